"""Reference BERT-base encoder (Devlin et al. 2019), written like Hugging Face's
BertModel (same module names): 12 layers, hidden 768, 12 heads, FFN 3072 with
exact (erf) GELU, vocabulary 30522, 512 positions, 2 token types, LayerNorm
eps 1e-12, post-LN residual blocks. Sequence length 128 by default.

forward(input_ids, token_type_ids, attention_mask), all int64 [B, S], returns
the last hidden state [B, S, 768] (no pooler: a single output). The additive
attention mask (1 - mask) * -10000 is computed inside forward, and the head
split/merge uses x.size() like the original, so the ONNX export carries the
usual Shape/Gather/Unsqueeze/Concat/Reshape chains. Seeded random weights:
N(0, 0.02) like the original initialisation, with small random biases and
LayerNorm affine parameters near (1, 0) so that they are exercised (_common.py).
"""
import math

import torch
from torch import nn

try:  # part of the `models` package
    from ._common import init_transformer, seeded
except ImportError:  # models/ itself on sys.path (tests/python/conftest.py)
    from _common import init_transformer, seeded

HIDDEN, HEADS, FFN, VOCAB, MAX_POSITIONS, TYPE_VOCAB, LN_EPS = 768, 12, 3072, 30522, 512, 2, 1e-12
SEQ = 128


class BertEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, HIDDEN)
        self.position_embeddings = nn.Embedding(MAX_POSITIONS, HIDDEN)
        self.token_type_embeddings = nn.Embedding(TYPE_VOCAB, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.dropout = nn.Dropout(0.1)
        self.register_buffer("position_ids", torch.arange(MAX_POSITIONS).unsqueeze(0))

    def forward(self, input_ids, token_type_ids):
        position_ids = self.position_ids[:, :input_ids.size(1)]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.head_dim = HIDDEN // HEADS
        self.query = nn.Linear(HIDDEN, HIDDEN)
        self.key = nn.Linear(HIDDEN, HIDDEN)
        self.value = nn.Linear(HIDDEN, HIDDEN)
        self.dropout = nn.Dropout(0.1)

    def transpose_for_scores(self, x):
        """[B, S, H] -> [B, heads, S, head_dim]."""
        x = x.view(x.size()[:-1] + (HEADS, self.head_dim))
        return x.permute(0, 2, 1, 3)

    def forward(self, hidden, mask):
        q = self.transpose_for_scores(self.query(hidden))
        k = self.transpose_for_scores(self.key(hidden))
        v = self.transpose_for_scores(self.value(hidden))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask
        probs = self.dropout(nn.functional.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size()[:-2] + (HIDDEN,))


class BertDenseResidual(nn.Module):
    """Dense, dropout, residual add, LayerNorm (BertSelfOutput and BertOutput)."""

    def __init__(self, n_in):
        super().__init__()
        self.dense = nn.Linear(n_in, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.self = BertSelfAttention()
        self.output = BertDenseResidual(HIDDEN)

    def forward(self, hidden, mask):
        return self.output(self.self(hidden, mask), hidden)


class BertIntermediate(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(HIDDEN, FFN)

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))  # exact: 0.5 x (1 + erf(x / sqrt 2))


class BertLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = BertAttention()
        self.intermediate = BertIntermediate()
        self.output = BertDenseResidual(FFN)

    def forward(self, hidden, mask):
        attn = self.attention(hidden, mask)
        return self.output(self.intermediate(attn), attn)


class BertEncoder(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer() for _ in range(layers)])

    def forward(self, hidden, mask):
        for layer in self.layer:
            hidden = layer(hidden, mask)
        return hidden


class BertModel(nn.Module):
    def __init__(self, layers=12):
        super().__init__()
        self.embeddings = BertEmbeddings()
        self.encoder = BertEncoder(layers)

    def forward(self, input_ids, token_type_ids, attention_mask):
        hidden = self.embeddings(input_ids, token_type_ids)
        # [B, S] -> [B, 1, 1, S]: 0 where attended, -10000 where masked, added to every head's scores.
        mask = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * -10000.0
        return self.encoder(hidden, mask)


def build(seed=0, layers=12):
    """The eval-mode model with seeded random weights; `layers` < 12 for cheap tests."""
    with seeded(seed):
        return init_transformer(BertModel(layers)).eval()


def example_inputs(batch=1, seed=0, seq=SEQ):
    """(input_ids, token_type_ids, attention_mask), int64 [batch, seq]: random tokens, a
    second segment in the second half, and the last quarter of each sequence padded
    out (mask 0) so the mask matters."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, VOCAB, (batch, seq), generator=g)
    token_type_ids = (torch.arange(seq) >= seq // 2).long().expand(batch, seq).contiguous()
    attention_mask = (torch.arange(seq) < seq - seq // 4).long().expand(batch, seq).contiguous()
    return input_ids, token_type_ids, attention_mask
