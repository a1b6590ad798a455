"""Fine-tune the top of a GPT-2-style decoder with ``rules/gpt.frz``; mind the tied head.

    python examples/finetune_gpt.py

In GPT-2 the LM head is tied to the token embedding: ``lm_head.weight`` *is*
``transformer.wte.weight``, one tensor under two names. ``rules/gpt.frz`` freezes it
(under both names) and trains the last two blocks, ``ln_f`` and every LayerNorm.

The script first shows what happens with rules that decide the two names differently
(``freeze transformer.wte; unfreeze lm_head``): one tensor cannot be both, the planner
says so in a warning, and the last statement wins. Then it trains a few steps with the
rule file on synthetic tokens and checks that the tied embedding/head did not move.

Uses ``freezedsl.testing:gpt_decoder`` (Hugging Face GPT-2's parameter names at toy size).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import freezedsl
from freezedsl.testing import gpt_decoder

RULES = Path(__file__).resolve().parent.parent / "rules" / "gpt.frz"


def main() -> int:
    torch.manual_seed(0)
    model = gpt_decoder()
    assert model.lm_head.weight is model.transformer.wte.weight  # tied

    # Rules that treat the two names of the tied tensor differently: a warning.
    conflicting = freezedsl.plan(model, "freeze all; unfreeze lm_head")
    for warning in conflicting.warnings:
        print("warning:", warning)
    print()

    plan = freezedsl.load(RULES).apply(model)
    print(plan.render())
    print()

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    tokens = torch.randint(0, 1000, (8, 33))  # synthetic: 8 sequences of 33 tokens
    inputs, targets = tokens[:, :-1], tokens[:, 1:]

    model.train()
    for step in range(5):
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
        )
        loss.backward()
        optimizer.step()
        print(f"step {step + 1}/5  loss {loss.item():.4f}")

    params = dict(model.named_parameters())
    moved = [n for n, old in frozen.items() if not torch.equal(old, params[n])]
    if moved:
        print(f"FAILED: frozen parameters changed: {moved[:5]}")
        return 1
    if (
        model.lm_head.weight.requires_grad
        or model.lm_head.weight is not model.transformer.wte.weight
    ):
        print("FAILED: the tied head is not the frozen embedding")
        return 1
    print(
        f"verified: {len(frozen)} frozen parameter tensors are unchanged, "
        "the tied lm_head/wte included"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
