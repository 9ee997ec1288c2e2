"""The suite's tiny language model, defined here and built offline by ``make models``.

``tiny-llm`` is a two-layer Llama-architecture decoder (hidden 64, 4 query heads sharing 2
key/value heads, SwiGLU 192, RMSNorm, rotary positions, tied input/output embeddings) with a
byte-level BPE vocabulary of 512, trained for a few hundred steps on English-like sentences
that :func:`corpus` generates from a small seeded grammar (sensors, boards, clouds and the
requests between them). Nothing is downloaded: the architecture comes from ``transformers``'
``LlamaConfig``, the tokenizer is trained with ``tokenizers`` on the same generated text, and
``onnxruntime-genai``'s model builder exports it (fp32, and int4 weight-only blocks).

It is a *workload*, not a useful model: it has the token loop, KV cache, attention and
sampling of a real small LLM at a size (0.13 M parameters) that keeps the committed files under
1 MB and a token in well under a millisecond on a CPU. Its text is grammatical-looking and
repetitive. Everything here is plain values and standard-library code: no torch import.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class LlmArchitecture:
    """The ``LlamaConfig`` fields that define the network."""

    vocab_size: int = 512
    hidden_size: int = 64
    intermediate_size: int = 192
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 256
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0


@dataclass(frozen=True)
class LlmRecipe:
    """How the build trains it: AdamW for ``steps`` batches of ``batch`` windows of ``window``
    tokens drawn from ``sentences`` generated sentences (in passages of ``per_passage``)."""

    steps: int = 300
    lr: float = 3e-3
    batch: int = 32
    window: int = 64
    sentences: int = 12_000
    per_passage: int = 4


@dataclass(frozen=True)
class LlmDefinition:
    """A generative suite model: its name, network, training and evaluation set sizes."""

    name: str
    description: str
    architecture: LlmArchitecture
    recipe: LlmRecipe
    seed: int
    eos_token: str = "<|endoftext|>"
    eval_passages: int = 16
    """Held-out passages (other seed) whose per-token loss gives the perplexity."""
    probe_prompts: int = 8
    """Prompts whose greedy continuation the runtime must reproduce from torch."""
    probe_new_tokens: int = 16


TINY_LLM = LlmDefinition(
    name="tiny-llm",
    description="Llama-architecture decoder (2 layers, hidden 64, GQA 4/2 heads, vocab 512, "
    "context 256), trained briefly on generated sentences; a token-loop workload, not a "
    "useful model.",
    architecture=LlmArchitecture(),
    recipe=LlmRecipe(),
    seed=20240601,
)

GENERATIVE_SUITE: tuple[LlmDefinition, ...] = (TINY_LLM,)


def generative_model(name: str) -> LlmDefinition:
    """The generative suite entry called ``name``; KeyError naming the known ones."""
    for entry in GENERATIVE_SUITE:
        if entry.name == name:
            return entry
    known = ", ".join(m.name for m in GENERATIVE_SUITE)
    raise KeyError(f"no generative suite model '{name}' (known: {known})")


_SUBJECTS = (
    "the sensor", "a camera", "the phone", "the board", "a server", "the cloud",
    "an edge node", "the model", "the gateway", "a drone", "the robot", "the watch",
    "a car", "the meter", "the cluster", "a tablet",
)  # fmt: skip
_VERBS = (
    "reads", "sends", "measures", "runs", "answers", "streams", "stores", "drops",
    "encodes", "counts", "batches", "caches", "checks", "logs", "waits for", "loads",
)  # fmt: skip
_OBJECTS = (
    "a frame", "the tokens", "the request", "a packet", "its battery", "the logits",
    "one image", "the queue", "a reply", "the weights", "its memory", "a sample",
    "the signal", "a prompt", "the answer", "a batch",
)  # fmt: skip
_TAILS = (
    "every second", "at noon", "on the network", "in the rack", "without delay",
    "after a while", "before dawn", "twice", "in {n} ms", "at {n} watts", "{n} times",
    "for {n} seconds", "over the link", "near the edge", "in the data centre", "again",
)  # fmt: skip
_JOINS = (". ", ". ", ". ", ", and then ", ", while ", " because ")


def sentence(rng: random.Random) -> str:
    """One generated clause: subject, verb, object, a tail that may carry a number."""
    tail = rng.choice(_TAILS).format(n=rng.randrange(1, 1000))
    return f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {tail}"


def passage(rng: random.Random, clauses: int) -> str:
    """``clauses`` clauses joined by full stops or conjunctions, ending with a full stop."""
    text = sentence(rng)
    for _ in range(clauses - 1):
        text += rng.choice(_JOINS) + sentence(rng)
    return text + "."


def corpus(seed: int, sentences: int, per_passage: int) -> list[str]:
    """``sentences`` clauses in passages of ``per_passage``, from ``random.Random(seed)``
    (whose ``choice``/``randrange`` sequence is stable across Python versions)."""
    rng = random.Random(seed)
    return [passage(rng, per_passage) for _ in range(sentences // per_passage)]


def probe_texts(seed: int, count: int) -> list[str]:
    """Short prompts (a subject and a verb) for the greedy-continuation check."""
    rng = random.Random(seed + 2)
    return [f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)}" for _ in range(count)]
