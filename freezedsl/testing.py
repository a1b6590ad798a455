"""Toy models with the parameter names of real ones: for trying rules, docs and tests.

This is freezedsl's public testing module (as numpy.testing is numpy's); nothing in the
library imports it. The models are not meant to be trained for real.

Rule files are written against real naming schemes (HF BERT, GPT-2, MoE transformers,
torchvision-style CNNs). These builders reproduce those schemes at toy sizes in pure
torch, so examples and tests run offline in milliseconds. Every builder takes only
keyword arguments with defaults, so ``--arch freezedsl.testing:bert_encoder`` works as is.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["bert_encoder", "gpt_decoder", "moe_transformer", "small_cnn"]


def _attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, **kw: object
) -> torch.Tensor:
    """Multi-head attention over (batch, seq, hidden) projections."""
    b, t, h = q.shape
    split = [x.view(b, t, heads, h // heads).transpose(1, 2) for x in (q, k, v)]
    out = F.scaled_dot_product_attention(*split, **kw)  # type: ignore[arg-type]
    return out.transpose(1, 2).reshape(b, t, h)


def _check_heads(hidden: int, heads: int) -> None:
    if heads < 1 or hidden % heads:
        raise ValueError(f"hidden={hidden} must be a multiple of heads={heads}")


# ----------------------------------------------------------------------------- BERT


class BertEmbeddings(nn.Module):
    def __init__(self, vocab_size: int, hidden: int, max_len: int, type_vocab: int = 2) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden)
        self.position_embeddings = nn.Embedding(max_len, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.LayerNorm = nn.LayerNorm(hidden)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)


class BertSelfOutput(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden)


class BertAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.self = BertSelfAttention(hidden)  # HF's name: attention.self.query ...
        self.output = BertSelfOutput(hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        s = self.self
        ctx = _attend(s.query(x), s.key(x), s.value(x), self.heads, attn_mask=mask)
        return self.output.LayerNorm(x + self.output.dense(ctx))


class BertIntermediate(nn.Module):
    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, intermediate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.dense = nn.Linear(intermediate, hidden)
        self.LayerNorm = nn.LayerNorm(hidden)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(x + self.dense(h))


class BertLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int) -> None:
        super().__init__()
        self.attention = BertAttention(hidden, heads)
        self.intermediate = BertIntermediate(hidden, intermediate)
        self.output = BertOutput(hidden, intermediate)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, hidden: int, layers: int, heads: int, intermediate: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(hidden, heads, intermediate) for _ in range(layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, mask)
        return x


class BertPooler(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(x[:, 0]))


class BertForSequenceClassification(nn.Module):
    """BERT encoder + pooler + classifier, named like HF's BertModel without the prefix."""

    def __init__(
        self,
        vocab_size: int,
        hidden: int,
        layers: int,
        heads: int,
        intermediate: int,
        max_len: int,
        num_labels: int,
    ) -> None:
        super().__init__()
        _check_heads(hidden, heads)
        self.embeddings = BertEmbeddings(vocab_size, hidden, max_len)
        self.encoder = BertEncoder(hidden, layers, heads, intermediate)
        self.pooler = BertPooler(hidden)
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(batch, seq) token ids -> (batch, num_labels) logits."""
        mask = None
        if attention_mask is not None:  # 1 = attend, 0 = padding
            mask = attention_mask[:, None, None, :].to(torch.bool)
        x = self.encoder(self.embeddings(input_ids, token_type_ids), mask)
        return self.classifier(self.pooler(x))


def bert_encoder(
    vocab_size: int = 1000,
    hidden: int = 64,
    layers: int = 4,
    heads: int = 4,
    intermediate: int = 128,
    max_len: int = 128,
    num_labels: int = 2,
) -> nn.Module:
    """A toy BERT classifier with HF BERT's parameter names."""
    return BertForSequenceClassification(
        vocab_size, hidden, layers, heads, intermediate, max_len, num_labels
    )


# ---------------------------------------------------------------------------- GPT-2


class GPTAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(hidden, 3 * hidden)
        self.c_proj = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.c_attn(x).chunk(3, dim=-1)
        return self.c_proj(_attend(q, k, v, self.heads, is_causal=True))


class GPTMLP(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(hidden, 4 * hidden)
        self.c_proj = nn.Linear(4 * hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class GPTBlock(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden)
        self.attn = GPTAttention(hidden, heads)
        self.ln_2 = nn.LayerNorm(hidden)
        self.mlp = GPTMLP(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPTTransformer(nn.Module):
    def __init__(self, vocab_size: int, hidden: int, layers: int, heads: int, max_len: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab_size, hidden)
        self.wpe = nn.Embedding(max_len, hidden)
        self.h = nn.ModuleList(GPTBlock(hidden, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(hidden)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.wte(input_ids) + self.wpe(positions)
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class GPTLMHeadModel(nn.Module):
    """A causal LM named like HF's GPT2LMHeadModel (Linear in place of Conv1D)."""

    def __init__(
        self, vocab_size: int, hidden: int, layers: int, heads: int, max_len: int, tie: bool
    ) -> None:
        super().__init__()
        _check_heads(hidden, heads)
        self.transformer = GPTTransformer(vocab_size, hidden, layers, heads, max_len)
        self.lm_head = nn.Linear(hidden, vocab_size, bias=False)
        if tie:  # one Parameter under two names, as in GPT-2
            self.lm_head.weight = self.transformer.wte.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(batch, seq) token ids -> (batch, seq, vocab) next-token logits."""
        return self.lm_head(self.transformer(input_ids))


def gpt_decoder(
    vocab_size: int = 1000,
    hidden: int = 64,
    layers: int = 4,
    heads: int = 4,
    max_len: int = 128,
    tie_weights: bool = True,
) -> nn.Module:
    """A toy GPT-2; with ``tie_weights`` ``lm_head.weight is transformer.wte.weight``."""
    return GPTLMHeadModel(vocab_size, hidden, layers, heads, max_len, tie_weights)


# ---------------------------------------------------------------------------- MoE


def _on_meta() -> bool:
    """Whether factories currently create tensors on meta (``with torch.device("meta")``)."""
    return torch.empty(0).device.type == "meta"


def _linear(in_features: int, out_features: int, meta: bool) -> nn.Linear:
    """An ``nn.Linear`` whose random init is skipped on the meta device.

    A 60x256 MoE has ~46k expert Linears; on meta their init kernels compute nothing
    yet cost about half the build time, so there only the Parameters are set up.
    """
    if not meta:
        return nn.Linear(in_features, out_features)
    layer = nn.Linear.__new__(nn.Linear)
    nn.Module.__init__(layer)
    layer.in_features = in_features
    layer.out_features = out_features
    layer.weight = nn.Parameter(torch.empty(out_features, in_features))
    layer.bias = nn.Parameter(torch.empty(out_features))
    return layer


class Expert(nn.Module):
    """A SwiGLU feed-forward expert: w2(silu(w1 x) * w3 x)."""

    def __init__(self, hidden: int, ffn: int, meta: bool = False) -> None:
        super().__init__()
        self.w1 = _linear(hidden, ffn, meta)
        self.w2 = _linear(ffn, hidden, meta)
        self.w3 = _linear(hidden, ffn, meta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MoE(nn.Module):
    """Top-1 routed mixture of experts."""

    def __init__(self, hidden: int, ffn: int, experts: int) -> None:
        super().__init__()
        self.router = nn.Linear(hidden, experts)
        meta = _on_meta()
        self.experts = nn.ModuleList(Expert(hidden, ffn, meta) for _ in range(experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        gates = self.router(flat).softmax(dim=-1)
        weight, choice = gates.max(dim=-1)
        out = torch.zeros_like(flat)
        for index in choice.unique().tolist():
            rows = choice == index
            out[rows] = weight[rows, None] * self.experts[index](flat[rows])
        return out.view_as(x)


class MoEAttention(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.o = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.o(_attend(self.q(x), self.k(x), self.v(x), 1, is_causal=True))


class MoEBlock(nn.Module):
    def __init__(self, hidden: int, ffn: int, experts: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.attn = MoEAttention(hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.moe = MoE(hidden, ffn, experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.moe(self.norm2(x))


class MoETransformer(nn.Module):
    def __init__(self, blocks: int, experts: int, hidden: int, ffn: int, vocab: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.blocks = nn.ModuleList(MoEBlock(hidden, ffn, experts) for _ in range(blocks))
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(batch, seq) token ids -> (batch, seq, vocab) logits."""
        x = self.embed(input_ids)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def moe_transformer(
    blocks: int = 60, experts: int = 256, hidden: int = 8, ffn: int = 8, vocab: int = 100
) -> nn.Module:
    """A synthetic MoE with many parameter tensors, for scaling benchmarks on meta.

    Per block: 4 attention Linears, 2 LayerNorms, a router and ``experts`` x (w1, w2, w3)
    Linears with bias, i.e. ``14 + 6 * experts`` tensors; plus 5 outside the blocks.
    The defaults give 60 * (14 + 1536) + 5 = 93,005 tensors.
    """
    return MoETransformer(blocks, experts, hidden, ffn, vocab)


# ----------------------------------------------------------------------------- CNN


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            bn=nn.BatchNorm2d(cout),
            relu=nn.ReLU(inplace=True),
        )
    )


class SmallCNN(nn.Module):
    """Conv feature extractor + linear classifier, the usual transfer-learning split."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_block(1, 16),
            _conv_block(16, 32),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            _conv_block(32, 64),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, 8, 8) images -> (batch, num_classes) logits."""
        return self.classifier(self.features(x))


def small_cnn(num_classes: int = 10) -> nn.Module:
    """A small CNN for 8x8 single-channel digits (sklearn's digits dataset size)."""
    return SmallCNN(num_classes)
