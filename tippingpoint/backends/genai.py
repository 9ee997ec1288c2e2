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

from tippingpoint.backends.base import SessionBase
from tippingpoint.backends.generative import Generation, GenerativeInfo, StreamCompletion
from tippingpoint.backends.options import TypedOptions, module_availability
from tippingpoint.core.errors import (
    InferenceError,
    InvalidShapeError,
    ModelFileError,
    ModelLoadError,
    RuntimeNotInstalledError,
)
from tippingpoint.core.types import (
    Availability,
    BackendDescription,
    Device,
    OptionValue,
    TensorSpec,
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


class GenAiSession(SessionBase):
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
        super().__init__(
            [TensorSpec(name="input_ids", shape=(1, None), dtype="int32")],
            [TensorSpec(name="output_ids", shape=(1, None), dtype="int32")],
            description,
        )
        self._og = og
        self._model = model
        self._tokenizer = tokenizer
        self._info = info
        self._max_new_tokens = max_new_tokens

    @property
    def generative_info(self) -> GenerativeInfo:
        """Vocabulary, context length, end-of-sequence id, architecture."""
        return self._info

    def tokenize(self, text: str) -> tuple[int, ...]:
        """The model's token ids for ``text``."""
        return tuple(int(t) for t in self._tokenizer.encode(text))

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens``."""
        return str(self._tokenizer.decode(np.asarray(tokens, dtype=np.int32)))

    def _check_fits(self, prompt_len: int, max_new_tokens: int) -> None:
        if prompt_len < 1:
            raise InvalidShapeError("the prompt is empty", "give at least one prompt token")
        if max_new_tokens < 1:
            raise InvalidShapeError(
                f"max_new_tokens is {max_new_tokens}", "ask for at least one new token"
            )
        limit = self._info.context_length
        if prompt_len + max_new_tokens > limit:
            raise InvalidShapeError(
                f"{prompt_len} prompt tokens + {max_new_tokens} new tokens exceed the model's "
                f"context of {limit}",
                "shorten the prompt or ask for fewer new tokens",
            )

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
        end = stamps[-1] if stamps else clock()
        stopped = bool(tokens) and not ignore_eos and tokens[-1] == self._info.eos_token_id
        completion = StreamCompletion(
            scheduled_ns=start if scheduled_ns is None else scheduled_ns,
            start_ns=start,
            end_ns=end,
            chunk_ns=tuple(stamps),
            chunk_tokens=(1,) * len(stamps),
            prompt_tokens_client=len(ids),
            output_tokens_client=len(tokens),
            prompt_tokens_server=len(ids),
            output_tokens_server=len(tokens),
            finish_reason="stop" if stopped else "length",
        )
        text = self.detokenize(tokens) if decode else None
        return Generation(prompt_tokens=ids, tokens=tuple(tokens), completion=completion, text=text)

    def prompt_logits(self, tokens: Sequence[int]) -> np.ndarray:
        """The next-token logits at every position of ``tokens`` (one prefill), ``[len, vocab]``;
        for perplexity."""
        self._check_fits(len(tokens), 1)
        gen = self._og.Generator(self._model, self._params(len(tokens) + 1, True))
        gen.append_tokens(np.asarray(tokens, dtype=np.int32))
        logits = np.asarray(gen.get_output("logits"), dtype=np.float32)
        return logits.reshape(len(tokens), -1)

    def bind(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        """One call generates ``max_new_tokens`` (an option) after the prompt ``feeds[0]``
        (``int32`` token ids, shape ``(1, n)``) and returns them as ``(1, max_new_tokens)``."""
        if len(feeds) != 1:
            raise ValueError(f"expected 1 input (prompt token ids), got {len(feeds)}")
        ids = tuple(int(t) for t in np.asarray(feeds[0]).reshape(-1))
        self._check_fits(len(ids), self._max_new_tokens)
        n = self._max_new_tokens

        def call() -> Sequence[np.ndarray]:
            gen = self.generate(ids, n)
            return [np.asarray(gen.tokens, dtype=np.int32).reshape(1, -1)]

        return call

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
