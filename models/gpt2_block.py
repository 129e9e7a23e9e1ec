"""Reference GPT-2-small decoder block (Radford et al. 2019), written like Hugging
Face's GPT2Block (same module names; its Conv1D layers, which store weights
transposed, are nn.Linear here): pre-LN (eps 1e-5) causal self-attention with
12 heads over hidden 768, then an MLP 768 -> 3072 -> 768 with GPT-2's tanh
GELU approximation ("gelu_new") written out explicitly.

The causal mask is a constant lower-triangular bool buffer over 1024 positions,
sliced with x.size() like the original and applied with torch.where (masked
scores become the most negative float32). forward(hidden_states) maps float32
[B, S, 768] (S = 128 by default) to [B, S, 768]. Seeded random weights:
N(0, 0.02) like the original, output projections scaled by 1/sqrt(2 * 12
layers) as GPT-2 does, small random biases and LayerNorm parameters near (1, 0).
"""
import math

import torch
from torch import nn

try:  # part of the `models` package
    from ._common import init_transformer, seeded
except ImportError:  # models/ itself on sys.path (tests/python/conftest.py)
    from _common import init_transformer, seeded

HIDDEN, HEADS, FFN, MAX_POSITIONS, LN_EPS, N_LAYER = 768, 12, 3072, 1024, 1e-5, 12
SEQ = 128


def gelu_new(x):
    """GPT-2's GELU: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.head_dim = HIDDEN // HEADS
        self.register_buffer("bias", torch.tril(torch.ones(MAX_POSITIONS, MAX_POSITIONS, dtype=torch.bool))
                             .view(1, 1, MAX_POSITIONS, MAX_POSITIONS))
        self.c_attn = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.c_proj = nn.Linear(HIDDEN, HIDDEN)
        self.attn_dropout = nn.Dropout(0.1)
        self.resid_dropout = nn.Dropout(0.1)

    def _split_heads(self, x):
        """[B, S, H] -> [B, heads, S, head_dim]."""
        return x.view(x.size()[:-1] + (HEADS, self.head_dim)).permute(0, 2, 1, 3)

    def _merge_heads(self, x):
        """[B, heads, S, head_dim] -> [B, S, H]."""
        x = x.permute(0, 2, 1, 3).contiguous()
        return x.view(x.size()[:-2] + (HEADS * self.head_dim,))

    def forward(self, hidden):
        query, key, value = self.c_attn(hidden).split(HIDDEN, dim=2)
        query, key, value = self._split_heads(query), self._split_heads(key), self._split_heads(value)
        w = torch.matmul(query, key.transpose(-1, -2))
        w = w / torch.full([], value.size(-1) ** 0.5, dtype=w.dtype)
        query_length, key_length = query.size(-2), key.size(-2)
        causal_mask = self.bias[:, :, key_length - query_length:key_length, :key_length]
        w = torch.where(causal_mask, w, torch.full([], torch.finfo(w.dtype).min, dtype=w.dtype))
        w = self.attn_dropout(nn.functional.softmax(w, dim=-1))
        return self.resid_dropout(self.c_proj(self._merge_heads(torch.matmul(w, value))))


class GPT2MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc = nn.Linear(HIDDEN, FFN)
        self.c_proj = nn.Linear(FFN, HIDDEN)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        return self.dropout(self.c_proj(gelu_new(self.c_fc(x))))


class GPT2Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.attn = GPT2Attention()
        self.ln_2 = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.mlp = GPT2MLP()

    def forward(self, hidden_states):
        hidden = hidden_states + self.attn(self.ln_1(hidden_states))
        return hidden + self.mlp(self.ln_2(hidden))


def _weight_scale(name):
    """GPT-2 scales the residual-stream output projections by 1/sqrt(2 n_layer)."""
    return 1 / math.sqrt(2 * N_LAYER) if name.endswith("c_proj") else 1.0


def build(seed=0):
    """The eval-mode block with seeded random weights."""
    with seeded(seed):
        return init_transformer(GPT2Block(), weight_scale=_weight_scale).eval()


def example_inputs(batch=1, seed=0, seq=SEQ):
    """(hidden_states,): float32 [batch, seq, 768], standard normal."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, seq, HIDDEN, generator=g),)
