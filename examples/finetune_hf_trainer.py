"""Gradual unfreezing under the Hugging Face ``Trainer``, with a checkpoint resumed mid-run.

    python examples/finetune_hf_trainer.py

``examples/trainer_rules/bert_gradual.frz`` trains the classifier and pooler first, then
unfreezes one encoder layer per epoch (``at epoch 1:`` / ``at epoch 2:``), with
layer-wise learning-rate decay and no weight decay for biases and LayerNorms.
``build_optimizer`` applies the rules in force at epoch 0 and builds AdamW's groups from
the ``lr`` / ``weight_decay`` statements, plus an empty group reserved for each group a
later phase fills; ``FreezeCallback`` unfreezes each phase at its epoch and moves the
newly trainable layer into its reserved groups. The LR scheduler is the one the Trainer
builds itself (linear decay after a warmup, from ``TrainingArguments``).

The script trains three epochs with a checkpoint after each, then trains again from
the checkpoint saved after epoch 2 (``trainer.train(resume_from_checkpoint=...)``) and
checks that the resumed run ends with the same weights, bit for bit, and that the
embeddings (frozen throughout) never moved.

A BERT of toy size built from a ``BertConfig`` (no download), synthetic tokens, CPU,
seconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging

from freezedsl.integrations.transformers import FreezeCallback, build_optimizer

RULES = Path(__file__).resolve().parent / "trainer_rules" / "bert_gradual.frz"
EPOCHS, EXAMPLES, BATCH = 3, 32, 8


def tiny_bert() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=200,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Synthetic sequences; the label says whether token 7 occurs."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(1)
        self.ids = torch.randint(0, 200, (EXAMPLES, 12), generator=g)
        self.ids[::2, 3] = 7
        self.labels = (self.ids == 7).any(dim=1).long()

    def __len__(self) -> int:
        return EXAMPLES

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(12, dtype=torch.long),
                "labels": self.labels[i]}  # fmt: skip


def train(
    out: str, resume: str | None = None
) -> tuple[BertForSequenceClassification, FreezeCallback]:
    model = tiny_bert()
    optimizer = build_optimizer(model, RULES, lr=2e-3, weight_decay=0.01)  # applies epoch 0
    callback = FreezeCallback(RULES)
    args = TrainingArguments(
        output_dir=out,
        num_train_epochs=EPOCHS,
        per_device_train_batch_size=BATCH,
        lr_scheduler_type="linear",
        warmup_steps=2,
        save_strategy="epoch",
        logging_strategy="epoch",
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Tokens(),
        optimizers=(optimizer, None),  # None: the Trainer builds the LR scheduler
        callbacks=[callback],
    )
    trainer.train(resume_from_checkpoint=resume)
    return model, callback


def main() -> int:
    hf_logging.disable_progress_bar()
    embeddings = tiny_bert().bert.embeddings.word_embeddings.weight.detach().clone()
    with tempfile.TemporaryDirectory() as tmp:
        full, callback = train(f"{tmp}/full")
        for change in callback.changes:
            print(f"epoch {change.time}: unfroze {len(change.unfrozen)} tensors "
                  f"({change.unfrozen[0]}, ...), filled optimizer groups {list(change.added_groups)}")  # fmt: skip
        assert callback.schedule is not None and callback.schedule.optimizer is not None
        for group in callback.schedule.optimizer.param_groups:
            print(f"  group {group['name']!r}: {len(group['params'])} tensors, "
                  f"initial lr {group['initial_lr']:.2e}, weight decay {group['weight_decay']}")  # fmt: skip

        checkpoint = f"{tmp}/full/checkpoint-{2 * EXAMPLES // BATCH}"  # saved after epoch 2 (of 3)
        print(f"resuming from {Path(checkpoint).name}")
        resumed, _ = train(f"{tmp}/resumed", resume=checkpoint)

    different = [n for (n, a), (_, b) in zip(full.named_parameters(), resumed.named_parameters())
                 if not torch.equal(a, b)]  # fmt: skip
    if different:
        print(f"FAILED: the resumed run differs from the uninterrupted one in {different[:3]}")
        return 1
    if not torch.equal(full.bert.embeddings.word_embeddings.weight, embeddings):
        print("FAILED: the frozen embeddings moved")
        return 1
    layer0 = full.bert.encoder.layer[0].attention.self.query.weight
    if torch.equal(layer0, tiny_bert().bert.encoder.layer[0].attention.self.query.weight):
        print("FAILED: encoder layer 0 never trained after its phase")
        return 1
    print(
        "verified: the run resumed after epoch 2 ends bit for bit like the uninterrupted one; "
        "the frozen embeddings never moved and encoder layer 0 trained after its phase"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
