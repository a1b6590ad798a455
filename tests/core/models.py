"""Fixed models for table-driven tests, and helpers to snapshot a model's state."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ConvBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(self.bn1(self.conv1(x))))


class SmallNet(nn.Module):
    """A small CNN with a root-level parameter named `bias`, a ModuleDict with awkward keys."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        self.layer1 = nn.Sequential(ConvBlock(4), ConvBlock(4))
        self.layer2 = nn.Sequential(ConvBlock(4), ConvBlock(4), ConvBlock(4))
        self.heads = nn.ModuleDict(
            {"cls": nn.Linear(4, 3), "my-head": nn.Linear(4, 2), "all": nn.Linear(4, 1)}
        )
        self.fc = nn.Linear(4, 2)
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - never run
        return self.fc(self.layer2(self.layer1(self.stem(x))).mean((2, 3))) * self.scale + self.bias


class Attn(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)


class MLP(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)


class GPTBlock(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = Attn(d)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = MLP(d)


class Transformer(nn.Module):
    def __init__(self, vocab: int, d: int, layers: int, ctx: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList([GPTBlock(d) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)


class TinyGPT(nn.Module):
    """GPT-2 names, with the LM head tied to the token embedding."""

    def __init__(self, vocab: int = 11, d: int = 4, layers: int = 3, ctx: int = 8) -> None:
        super().__init__()
        self.transformer = Transformer(vocab, d, layers, ctx)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.transformer.wte.weight


class ScriptableNet(nn.Module):
    """Small enough to torch.jit.script."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 4)
        )
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def resnet18_meta() -> nn.Module:
    import torchvision

    with torch.device("meta"):
        return torchvision.models.resnet18(weights=None)


def mobilenet_v3_small_meta() -> nn.Module:
    import torchvision

    with torch.device("meta"):
        return torchvision.models.mobilenet_v3_small(weights=None)


# ------------------------------------------------------------------ snapshots


def flags(model: nn.Module) -> dict[str, bool]:
    """requires_grad under every parameter name (tied names included)."""
    return {n: bool(p.requires_grad) for n, p in model.named_parameters(remove_duplicate=False)}


def frozen_names(model: nn.Module) -> set[str]:
    return {n for n, rg in flags(model).items() if not rg}


def trainable_names(model: nn.Module) -> set[str]:
    return {n for n, rg in flags(model).items() if rg}


def snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything apply must not touch: values and buffers (bytes), training flags, structure."""
    out: dict[str, Any] = {}
    for k, v in model.state_dict(keep_vars=True).items():
        if v.device.type == "meta":
            out[k] = (tuple(v.shape), v.dtype, v.device.type)
        else:
            out[k] = (
                tuple(v.shape),
                v.dtype,
                v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes(),
            )
    out["__training__"] = [(n, m.training) for n, m in model.named_modules(remove_duplicate=False)]
    out["__structure__"] = [
        (n, type(m).__name__, id(m)) for n, m in model.named_modules(remove_duplicate=False)
    ]
    out["__params__"] = [(n, id(p)) for n, p in model.named_parameters(remove_duplicate=False)]
    out["__buffers__"] = [(n, id(b)) for n, b in model.named_buffers(remove_duplicate=False)]
    return out
