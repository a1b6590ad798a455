"""Fine-tune a BERT-style classifier with ``rules/bert.frz`` and AdamW parameter groups.

    python examples/finetune_bert.py

The rule file freezes the embeddings and the lower encoder layers and trains the top two
layers, the pooler, the classifier and every LayerNorm. The optimizer is then built the
usual transformer way, with two parameter groups: weight decay for weight matrices, none
for biases and LayerNorm parameters; both groups hold trainable parameters only.

Uses ``freezedsl.testing:bert_encoder`` (Hugging Face BERT's parameter names at toy size);
the same rule file fits ``transformers.BertForSequenceClassification``. CPU, seconds.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import freezedsl
from freezedsl.testing import bert_encoder

RULES = Path(__file__).resolve().parent.parent / "rules" / "bert.frz"


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Trainable parameters only, split into decayed weights and undecayed bias/LayerNorm."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def main() -> int:
    torch.manual_seed(0)
    model = bert_encoder(num_labels=3)
    plan = freezedsl.load(RULES).apply(model)
    print(plan.render())
    print()

    groups = param_groups(model, weight_decay=0.01)
    print(
        f"optimizer groups: {len(groups[0]['params'])} decayed, "  # type: ignore[arg-type]
        f"{len(groups[1]['params'])} undecayed tensors"
    )  # type: ignore[arg-type]
    optimizer = torch.optim.AdamW(groups, lr=1e-3)

    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    input_ids = torch.randint(0, 1000, (16, 24))  # synthetic: 16 sequences of 24 tokens
    attention_mask = torch.ones_like(input_ids)
    labels = torch.randint(0, 3, (16,))

    model.train()
    for step in range(5):
        optimizer.zero_grad(set_to_none=True)
        logits = model(input_ids, attention_mask=attention_mask)
        loss = nn.functional.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()
        print(f"step {step + 1}/5  loss {loss.item():.4f}")

    params = dict(model.named_parameters())
    moved = [n for n, old in frozen.items() if not torch.equal(old, params[n])]
    if moved:
        print(f"FAILED: frozen parameters changed: {moved[:5]}")
        return 1
    print(
        f"verified: {len(frozen)} frozen parameter tensors are unchanged "
        f"({plan.trainable_percent:.1f}% of the parameters trained)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
