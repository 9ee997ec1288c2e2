"""ONNX Runtime GenAI: a language model in process, with its own token-loop timing.

Loads an ``onnxruntime-genai`` model folder (the one holding ``genai_config.json``; either the
folder or that file may be given) and generates greedily, one token per step, reading
``perf_counter_ns`` as each token comes out of ``get_next_tokens``: the in-process counterpart of
a streaming endpoint, recorded in the same :class:`StreamCompletion` (one token per chunk).
Time to first token covers the prompt's tokenization (for a text prompt), the generator's
set-up and the prefill, as a server's would.

The runtime is imported lazily, by ``load``; ``pip install 'tippingpoint[genai]'`` installs it
(wheels for x86-64 and aarch64 Linux, macOS and Windows).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tippingpoint.backends.generative import Generation, GenerativeInfo, TokenLoopSession
from tippingpoint.backends.options import TypedOptions, module_availability
from tippingpoint.core.errors import (
    InferenceError,
    ModelFileError,
    ModelLoadError,
    RuntimeNotInstalledError,
)
from tippingpoint.core.types import (
    Availability,
    BackendDescription,
    Device,
    OptionValue,
)

INSTALL_HINT = "pip install 'tippingpoint[genai]'"
GENAI_CONFIG = "genai_config.json"


class GenAiProvider(str, Enum):
    """Where onnxruntime-genai runs the model."""

    CPU = "cpu"
    CUDA = "cuda"
    """Needs the ``onnxruntime-genai-cuda`` wheel instead of ``onnxruntime-genai``."""


class GenAiOptions(BaseModel):
    """Options of the onnxruntime-genai backend; all are recorded in the report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intra_op_threads: int = Field(default=0, ge=0, description="0 lets ONNX Runtime choose")
    provider: GenAiProvider = GenAiProvider.CPU
    max_new_tokens: int = Field(
        default=32, ge=1, description="tokens one bound call generates (the single-shot path)"
    )


def _config_dir(model: Path) -> Path:
    folder = model.parent if model.name == GENAI_CONFIG else model
    if not (folder / GENAI_CONFIG).is_file():
        raise ModelFileError(
            f"no {GENAI_CONFIG} at {folder}",
            "pass an onnxruntime-genai model folder or its genai_config.json",
        )
    return folder


class GenAiSession(TokenLoopSession):
    """An ``onnxruntime_genai.Model`` and its tokenizer behind the generative protocol."""

    def __init__(
        self,
        og: Any,
        model: Any,
        tokenizer: Any,
        info: GenerativeInfo,
        max_new_tokens: int,
        description: BackendDescription,
    ) -> None:
        super().__init__(info, max_new_tokens, description)
        self._og = og
        self._model = model
        self._tokenizer = tokenizer

    def tokenize(self, text: str) -> tuple[int, ...]:
        """The model's token ids for ``text``."""
        return tuple(int(t) for t in self._tokenizer.encode(text))

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens``."""
        return str(self._tokenizer.decode(np.asarray(tokens, dtype=np.int32)))

    def _params(self, total: int, ignore_eos: bool) -> Any:
        params = self._og.GeneratorParams(self._model)
        params.set_search_options(
            max_length=total, min_length=total if ignore_eos else 0, do_sample=False
        )
        return params

    def generate(
        self,
        prompt: Sequence[int] | str,
        max_new_tokens: int,
        *,
        ignore_eos: bool = True,
        scheduled_ns: int | None = None,
        decode: bool = False,
        on_token: Callable[[int], None] | None = None,
    ) -> Generation:
        """Greedy generation, timing every token (see :class:`GenerativeSession`)."""
        clock = time.perf_counter_ns
        start = clock()
        ids = self.tokenize(prompt) if isinstance(prompt, str) else tuple(int(t) for t in prompt)
        self._check_fits(len(ids), max_new_tokens)
        stamps: list[int] = []
        tokens: list[int] = []
        hint = "check the model folder with 'tippingpoint run' on its fp32 variant"
        try:
            gen = self._og.Generator(
                self._model, self._params(len(ids) + max_new_tokens, ignore_eos)
            )
            gen.append_tokens(np.asarray(ids, dtype=np.int32))
        except Exception as exc:  # the runtime raises its own RuntimeError subclasses
            raise InferenceError(f"onnxruntime-genai failed on the prompt: {exc}", hint) from exc
        while True:
            try:
                if gen.is_done():
                    break
                gen.generate_next_token()
                token = int(gen.get_next_tokens()[0])
            except Exception as exc:
                raise InferenceError(
                    f"onnxruntime-genai failed after {len(tokens)} tokens: {exc}", hint
                ) from exc
            stamps.append(clock())
            tokens.append(token)
            if on_token is not None:
                on_token(token)
        return self._finished(
            ids,
            tokens,
            stamps,
            start,
            ignore_eos=ignore_eos,
            scheduled_ns=scheduled_ns,
            decode=decode,
        )

    def prompt_logits(self, tokens: Sequence[int]) -> np.ndarray:
        """The next-token logits at every position of ``tokens`` (one prefill), ``[len, vocab]``;
        for perplexity."""
        self._check_fits(len(tokens), 1)
        gen = self._og.Generator(self._model, self._params(len(tokens) + 1, True))
        gen.append_tokens(np.asarray(tokens, dtype=np.int32))
        logits = np.asarray(gen.get_output("logits"), dtype=np.float32)
        return logits.reshape(len(tokens), -1)

    def close(self) -> None:
        """Drop the model (the runtime frees it with the last reference)."""
        self._model = None
        self._tokenizer = None


class GenAiBackend(TypedOptions[GenAiOptions]):
    """onnxruntime-genai: language models in process, token by token."""

    name = "onnxruntime-genai"
    formats = (".json",)
    """The model is a folder named by its ``genai_config.json``."""
    runtime = "onnxruntime-genai"
    network = False
    options_model = GenAiOptions

    def availability(self) -> Availability:
        """Installed or not, from package metadata."""
        return module_availability(
            "onnxruntime_genai",
            ("onnxruntime-genai", "onnxruntime-genai-cuda"),
            self.runtime,
            INSTALL_HINT,
        )

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> GenAiSession:
        """Load the model folder with the chosen provider and thread count."""
        opts = self.parse_options(options)
        folder = _config_dir(model)
        try:
            import onnxruntime_genai as og
        except ImportError:
            raise RuntimeNotInstalledError(
                "onnxruntime-genai is not installed", INSTALL_HINT
            ) from None
        try:
            raw = json.loads((folder / GENAI_CONFIG).read_text())
            config = og.Config(str(folder))
            config.clear_providers()
            if opts.provider is GenAiProvider.CUDA:
                config.append_provider("cuda")
            if opts.intra_op_threads:
                overlay = {
                    "model": {
                        "decoder": {
                            "session_options": {"intra_op_num_threads": opts.intra_op_threads}
                        }
                    }
                }
                config.overlay(json.dumps(overlay))
            og_model = og.Model(config)
            tokenizer = og.Tokenizer(og_model)
            info = GenerativeInfo(
                vocab_size=int(raw["model"]["vocab_size"]),
                context_length=int(raw["model"]["context_length"]),
                eos_token_id=int(tokenizer.eos_token_ids[0]),
                model_type=str(og_model.type),
            )
        except Exception as exc:  # og raises RuntimeError for any bad folder; json KeyError
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(
                f"onnxruntime-genai could not load {folder}: {first[:300]}",
                "check the folder is a complete onnxruntime-genai model (rebuild it)",
            ) from exc
        description = BackendDescription(
            name=self.name,
            runtime=self.runtime,
            runtime_version=str(og.__version__),
            device=Device.CPU if opts.provider is GenAiProvider.CPU else Device.CUDA,
            threads=opts.intra_op_threads or None,
            providers=(opts.provider.value,),
            options=opts.model_dump(mode="json"),
        )
        return GenAiSession(og, og_model, tokenizer, info, opts.max_new_tokens, description)
