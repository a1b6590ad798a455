"""LoRA fine-tuning with peft and a freezedsl rule file.

    python examples/finetune_peft.py

A BERT-style classifier (Hugging Face ``BertForSequenceClassification`` from a tiny
local config: nothing is downloaded) gets LoRA adapters on ``query``/``value`` with
``peft.get_peft_model``; ``examples/peft_rules/lora.frz`` then decides what trains,
written with the bare model's names (``bert.encoder.layer[-1]``) although peft moved
everything under ``base_model.model.`` and the adapted weights under ``base_layer.``.
The runtime lint (FZ350: a base weight under an adapter trains; FZ351: an adapter is
frozen) checks the result before training. CPU, seconds; needs transformers and peft.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import BertConfig, BertForSequenceClassification

import freezedsl
import freezedsl.lint

RULES = Path(__file__).resolve().parent / "peft_rules" / "lora.frz"


def build() -> torch.nn.Module:
    config = BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        vocab_size=1000, max_position_embeddings=64, num_labels=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_peft_model(
            BertForSequenceClassification(config),
            LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], task_type="SEQ_CLS"),
        )


def main() -> int:
    torch.manual_seed(0)
    model = build()
    plan = freezedsl.load(RULES).apply(model)
    print(plan.render())
    print()

    optimizer = torch.optim.AdamW((p for p in model.parameters() if p.requires_grad), lr=1e-2)
    freezedsl.lint.assert_ok(model, optimizer)  # FZ350/FZ351 and the other runtime checks
    print("lint: no finding")

    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    input_ids = torch.randint(0, 1000, (16, 24))  # synthetic: 16 sequences of 24 tokens
    labels = torch.randint(0, 3, (16,))
    model.train()
    for step in range(5):
        optimizer.zero_grad(set_to_none=True)
        loss = model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        print(f"step {step + 1}/5  loss {loss.item():.4f}")

    params = dict(model.named_parameters())
    moved = [n for n, old in frozen.items() if not torch.equal(old, params[n])]
    lora_b = [p for n, p in params.items() if ".lora_B." in n]
    if moved or not all(bool(p.detach().ne(0).any()) for p in lora_b):
        print(f"FAILED: frozen parameters changed: {moved[:5]}, or a LoRA B matrix did not train")
        return 1
    print(
        f"verified: {len(frozen)} frozen tensors are unchanged (base weights under base_layer included), "
        f"all {len(lora_b)} LoRA B matrices trained ({plan.trainable_percent:.1f}% of the parameters)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
