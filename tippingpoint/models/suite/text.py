"""``text-encoder-tiny``: a BERT-tiny shaped transformer encoder with a classification head."""

from __future__ import annotations

import math

import torch
from torch import nn


class SelfAttention(nn.Module):
    """Multi-head self-attention written out with linear layers and two matmuls."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention over the whole sequence (no padding mask: every token is real)."""
        b, s, h = x.shape
        q, k, v = (
            self.qkv(x).reshape(b, s, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        )
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        y: torch.Tensor = self.out(ctx.transpose(1, 2).reshape(b, s, h))
        return y

    def matmul_macs(self, seq_len: int) -> int:
        """MACs of the two attention matmuls (QK^T and AV), which have no weights."""
        return 2 * self.heads * seq_len * seq_len * self.head_dim


class EncoderLayer(nn.Module):
    """Post-norm transformer layer: attention and a GELU feed-forward, each with a residual."""

    def __init__(self, hidden: int, heads: int, ff: int) -> None:
        super().__init__()
        self.attn = SelfAttention(hidden, heads)
        self.norm1 = nn.LayerNorm(hidden)
        self.ff = nn.Sequential(nn.Linear(hidden, ff), nn.GELU(), nn.Linear(ff, hidden))
        self.norm2 = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One encoder layer."""
        x = self.norm1(x + self.attn(x))
        y: torch.Tensor = self.norm2(x + self.ff(x))
        return y


class TinyTextEncoder(nn.Module):
    """Token ids [1, 128] (vocabulary 1024) -> 2 layers, hidden 128, 2 heads, FF 512 -> 4 logits."""

    def __init__(
        self,
        vocab: int = 1024,
        seq_len: int = 128,
        hidden: int = 128,
        layers: int = 2,
        heads: int = 2,
        ff: int = 512,
        classes: int = 4,
    ) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab, hidden)
        self.position = nn.Parameter(torch.zeros(1, seq_len, hidden))
        self.norm = nn.LayerNorm(hidden)
        self.layers = nn.Sequential(*(EncoderLayer(hidden, heads, ff) for _ in range(layers)))
        self.pool = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self.classifier = nn.Linear(hidden, classes)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Class logits from the first token's final hidden state."""
        x = self.layers(self.norm(self.token(input_ids) + self.position))
        y: torch.Tensor = self.classifier(self.pool(x[:, 0]))
        return y
