"""llama.cpp (``llama-cpp-python``): a GGUF language model in process, with its own token loop.

Loads a ``.gguf`` file and generates greedily, one ``Llama.eval`` per token: the prompt in one
prefill, then each new token, the next token being the arg-max of the last position's logits
(read through ``llama_get_logits_ith``; the end-of-sequence logit is masked when ``ignore_eos``).
``perf_counter_ns`` is read as each token is chosen, and the request is recorded in the same
:class:`StreamCompletion` as the onnxruntime-genai backend's (one token per chunk). Time to
first token covers the prompt's tokenization (for a text prompt), clearing the KV cache and the
prefill. The KV cache is cleared before every request, so a repeated prompt is never served
from a cached prefix.

The runtime is imported lazily, by ``load``. PyPI has only the source distribution of
``llama-cpp-python``: ``pip install 'tippingpoint[llamacpp]'`` compiles llama.cpp (CMake and a
C++ compiler; several minutes). ``make test-llamacpp`` builds it in its own ``.venv-llamacpp``.
The suite's ``tiny-llm`` converts to GGUF with ``python -m tippingpoint.models.gguf_export``.
"""

from __future__ import annotations

import ctypes
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

INSTALL_HINT = (
    "pip install 'tippingpoint[llamacpp]' (builds llama.cpp from source: needs cmake and a C++ "
    "compiler), or run make test-llamacpp"
)


class KvCacheType(str, Enum):
    """Element type of llama.cpp's KV cache."""

    F16 = "f16"
    """llama.cpp's default: half the memory; logits differ from fp32 by about 1e-3."""
    F32 = "f32"
    """Full precision: the logits of an fp32 model match onnxruntime-genai's within 1e-5."""


_GGML_TYPE = {KvCacheType.F32: 0, KvCacheType.F16: 1}
"""``ggml_type`` values (ggml.h: GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1)."""


class LlamaCppOptions(BaseModel):
    """Options of the llama.cpp backend; all are recorded in the report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threads: int = Field(default=0, ge=0, description="0 lets llama.cpp choose")
    n_ctx: int = Field(default=0, ge=0, description="context size; 0 takes the model's")
    n_batch: int = Field(default=512, ge=1, description="prompt tokens per decode call")
    kv_cache: KvCacheType = KvCacheType.F16
    max_new_tokens: int = Field(
        default=32, ge=1, description="tokens one bound call generates (the single-shot path)"
    )


class LlamaCppSession(TokenLoopSession):
    """A ``llama_cpp.Llama`` behind the generative protocol."""

    def __init__(
        self,
        lib: Any,
        llm: Any,
        info: GenerativeInfo,
        max_new_tokens: int,
        description: BackendDescription,
    ) -> None:
        super().__init__(info, max_new_tokens, description)
        self._lib = lib
        self._llm = llm

    def tokenize(self, text: str) -> tuple[int, ...]:
        """The model's token ids for ``text`` (no BOS is added)."""
        ids = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        return tuple(int(t) for t in ids)

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens``."""
        raw: bytes = self._llm.detokenize([int(t) for t in tokens])
        return raw.decode("utf-8", errors="replace")

    def _last_logits(self) -> np.ndarray:
        """The logits of the last evaluated position (a view of llama.cpp's buffer)."""
        ptr = self._lib.llama_get_logits_ith(self._llm.ctx, -1)
        return np.ctypeslib.as_array(
            ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self._info.vocab_size,)
        )

    def _next(self, mask_eos: bool) -> int:
        logits = self._last_logits()
        token = int(np.argmax(logits))
        if mask_eos and token == self._info.eos_token_id:
            masked = logits.copy()
            masked[token] = -np.inf
            token = int(np.argmax(masked))
        return token

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
        hint = "check the GGUF file (python -m tippingpoint.models.gguf_export rebuilds it)"
        llm = self._llm
        try:
            llm.reset()
            llm.eval(list(ids))
            token = self._next(ignore_eos)
        except Exception as exc:  # llama_cpp raises RuntimeError/ValueError of its own
            raise InferenceError(f"llama.cpp failed on the prompt: {exc}", hint) from exc
        while True:
            stamps.append(clock())
            tokens.append(token)
            if on_token is not None:
                on_token(token)
            if len(tokens) == max_new_tokens or (
                not ignore_eos and token == self._info.eos_token_id
            ):
                break
            try:
                llm.eval([token])
                token = self._next(ignore_eos)
            except Exception as exc:
                raise InferenceError(
                    f"llama.cpp failed after {len(tokens)} tokens: {exc}", hint
                ) from exc
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
        """The next-token logits at every position of ``tokens``, ``[len, vocab]``, one
        position per decode call (the context keeps only the last position's logits); for
        perplexity."""
        self._check_fits(len(tokens), 1)
        rows = []
        self._llm.reset()
        for t in tokens:
            self._llm.eval([int(t)])
            rows.append(self._last_logits().copy())
        return np.stack(rows)

    def close(self) -> None:
        """Free the model and its context."""
        if self._llm is not None:
            self._llm.close()
        self._llm = None


class LlamaCppBackend(TypedOptions[LlamaCppOptions]):
    """llama.cpp: GGUF language models in process, token by token."""

    name = "llama-cpp"
    formats = (".gguf",)
    runtime = "llama.cpp"
    network = False
    options_model = LlamaCppOptions

    def availability(self) -> Availability:
        """Installed or not, from package metadata."""
        return module_availability("llama_cpp", ("llama-cpp-python",), self.runtime, INSTALL_HINT)

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> LlamaCppSession:
        """Load the GGUF file on the CPU with the chosen threads and context."""
        opts = self.parse_options(options)
        if model.suffix != ".gguf" or not model.is_file():
            raise ModelFileError(
                f"no GGUF file at {model}",
                "pass a .gguf file (python -m tippingpoint.models.gguf_export makes tiny-llm's)",
            )
        try:
            import llama_cpp
        except ImportError:
            raise RuntimeNotInstalledError(
                "llama-cpp-python is not installed", INSTALL_HINT
            ) from None
        threads = opts.threads or None
        try:
            llm = llama_cpp.Llama(
                model_path=str(model),
                n_ctx=opts.n_ctx,
                n_batch=opts.n_batch,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=0,
                type_k=_GGML_TYPE[opts.kv_cache],
                type_v=_GGML_TYPE[opts.kv_cache],
                verbose=False,
            )
            info = GenerativeInfo(
                vocab_size=int(llm.n_vocab()),
                context_length=int(llm.n_ctx()),
                eos_token_id=int(llm.token_eos()),
                model_type=str(llm.metadata.get("general.architecture", "unknown")),
            )
        except Exception as exc:  # llama_cpp raises ValueError for a file it cannot load
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(
                f"llama.cpp could not load {model}: {first[:300]}",
                "check the file is a complete GGUF model (rebuild it)",
            ) from exc
        description = BackendDescription(
            name=self.name,
            runtime=self.runtime,
            runtime_version=str(llama_cpp.__version__),
            device=Device.CPU,
            threads=opts.threads or None,
            providers=("cpu",),
            options=opts.model_dump(mode="json"),
        )
        return LlamaCppSession(llama_cpp, llm, info, opts.max_new_tokens, description)
