"""Small models for the cost tests (real CPU runs take milliseconds)."""

from __future__ import annotations

import torch
from torch import nn

# the integer fields of each side of a cost report (issue 14's contract)
COST_FIELDS = ("forward_flops", "backward_flops", "activation_bytes", "grad_bytes", "optimizer_state_bytes")


def mlp(d_in: int = 16, hidden: int = 32, d_out: int = 4) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


class ConvNet(nn.Module):
    """Conv + BatchNorm + pooling + a head: a ResNet in miniature."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16), nn.ReLU()
        )
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(self.stem(x))
        return self.head(h.mean(dim=(2, 3)))


def tiny_vit(layers: int = 4) -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        image_size=32, patch_size=8, num_layers=layers, num_heads=2, hidden_dim=32, mlp_dim=64
    )


def tiny_bert() -> nn.Module:
    from transformers import BertConfig, BertModel

    return BertModel(
        BertConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            vocab_size=100,
        )
    )


def tiny_llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=100,
    )
    cfg.use_cache = False
    return LlamaForCausalLM(cfg)
