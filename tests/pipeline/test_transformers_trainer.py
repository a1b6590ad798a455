"""FreezeCallback / build_optimizer under the Hugging Face Trainer (tiny BERT and GPT-2, CPU).

What is checked: the rules in force at time 0 are applied before any optimizer exists,
the phases change the trainable set and the optimizer groups at the right epoch or
step (compared with name rules written out by hand), a run resumed from a Trainer
checkpoint ends bit for bit where the uninterrupted run ends, and every way of wiring
the optimizer that would not follow the rules fails before the first step.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import freezedsl

transformers = pytest.importorskip("transformers")
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    get_constant_schedule,
    get_linear_schedule_with_warmup,
)

from freezedsl.integrations.transformers import STATE_KEY, FreezeCallback, build_optimizer

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

BERT_RULES = """
freeze all
unfreeze classifier, bert.pooler
lr 0.1x bert.encoder.layer.1
weight_decay 0 **.bias, **.LayerNorm
at epoch 1: unfreeze bert.encoder.layer.1
at epoch 2: freeze bert.pooler
"""
LR, WD = 1e-3, 0.01
N, BATCH = 16, 4  # 4 optimizer steps an epoch


def bert() -> Any:
    torch.manual_seed(0)
    config = BertConfig(  # type: ignore[call-arg]
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def gpt2() -> Any:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=100, n_positions=16, n_embd=32, n_layer=2, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    return GPT2LMHeadModel(config)


class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Synthetic sequences; labels are class ids (BERT) or the ids themselves (GPT-2)."""

    def __init__(self, lm: bool = False) -> None:
        g = torch.Generator().manual_seed(1)
        self.ids = torch.randint(0, 100, (N, 8), generator=g)
        self.labels = self.ids.clone() if lm else torch.randint(0, 2, (N,), generator=g)

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        mask = torch.ones(8, dtype=torch.long)
        return {"input_ids": self.ids[i], "attention_mask": mask, "labels": self.labels[i]}


def arguments(out: Path, **kw: Any) -> Any:
    opts: dict[str, Any] = {
        "output_dir": str(out),
        "per_device_train_batch_size": BATCH,
        "num_train_epochs": 3,
        "report_to": [],
        "save_strategy": "no",
        "use_cpu": True,
        "logging_strategy": "no",
        "seed": 0,
        "disable_tqdm": True,
        "learning_rate": LR,
        "weight_decay": WD,
    }
    opts.update(kw)
    return TrainingArguments(**opts)


class Probe(TrainerCallback):
    """Records, at each epoch (or step) start after FreezeCallback, what training sees."""

    def __init__(self, unit: str = "epoch") -> None:
        self.unit = unit
        self.seen: list[dict[str, Any]] = []

    def _look(self, when: int, model: Any, optimizer: Any) -> None:
        names = {id(p): n for n, p in model.named_parameters()}
        self.seen.append(
            {
                "time": when,
                "trainable": {n for n, p in model.named_parameters() if p.requires_grad},
                "settings": {
                    names[id(p)]: (g.get("initial_lr", g["lr"]), g["weight_decay"])
                    for g in optimizer.param_groups
                    for p in g["params"]
                },
                "state": {names[id(p)] for p in optimizer.state if optimizer.state[p]},
            }
        )

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.unit == "epoch":
            self._look(round(state.epoch), kw["model"], kw["optimizer"])

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.unit == "step":
            self._look(state.global_step, kw["model"], kw["optimizer"])


def run_bert(
    out: Path, *, resume: str | None = None, own_scheduler: bool = True, **kw: Any
) -> tuple[Any, Probe, FreezeCallback]:
    """BERT_RULES for 3 epochs; the LR scheduler ours (linear warmup) or the Trainer's."""
    model = bert()
    optimizer = build_optimizer(model, BERT_RULES, lr=LR, weight_decay=WD)
    scheduler = get_linear_schedule_with_warmup(optimizer, 2, 12) if own_scheduler else None
    probe, callback = Probe(), FreezeCallback(BERT_RULES)
    trainer = Trainer(
        model=model,
        args=arguments(out, **kw),
        train_dataset=Tokens(),
        optimizers=(optimizer, scheduler),
        callbacks=[callback, probe],
    )
    trainer.train(resume_from_checkpoint=resume)
    return model, probe, callback


# ----------------------------------------------------------------- reference (plain Python)


def expected_trainable(names: list[str], epoch: int) -> set[str]:
    """BERT_RULES spelled out over names, without freezedsl."""
    out = {n for n in names if n.startswith(("classifier.", "bert.pooler."))}
    if epoch >= 1:
        out |= {n for n in names if n.startswith("bert.encoder.layer.1.")}
    if epoch >= 2:
        out -= {n for n in names if n.startswith("bert.pooler.")}
    return out


def expected_settings(name: str) -> tuple[float, float]:
    lr = LR * 0.1 if name.startswith("bert.encoder.layer.1.") else LR
    wd = 0.0 if name.endswith(".bias") or ".LayerNorm." in name else WD
    return lr, wd


# ----------------------------------------------------------------- tests


def test_import_freezedsl_does_not_import_transformers() -> None:
    code = "import sys, freezedsl, freezedsl.integrations; assert 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_without_transformers_the_import_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['transformers'] = None\n"
        "try:\n"
        "    import freezedsl.integrations.transformers\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == (
        "freezedsl.integrations.transformers needs the transformers package: "
        "pip install 'freezedsl[hf]'"
    )


def test_phases_set_trainable_params_and_optimizer_groups(tmp_path: Path) -> None:
    model, probe, callback = run_bert(tmp_path)
    names = [n for n, _ in model.named_parameters()]
    assert [s["time"] for s in probe.seen] == [0, 1, 2]
    for seen in probe.seen:
        want = expected_trainable(names, seen["time"])
        assert seen["trainable"] == want, seen["time"]
        assert set(seen["settings"]) == want  # the optimizer holds exactly the trainable ones
        for name, (lr, wd) in seen["settings"].items():
            assert (lr, wd) == pytest.approx(expected_settings(name)), name
        assert seen["state"] <= want  # no optimizer state for a frozen tensor
    assert [(c.time, len(c.unfrozen), len(c.frozen)) for c in callback.changes] == [
        (1, 16, 0),
        (2, 0, 2),
    ]


def test_trainer_built_optimizer_never_holds_a_frozen_parameter(tmp_path: Path) -> None:
    """Without build_optimizer, the Trainer builds AdamW after on_init_end applied time 0."""
    model = bert()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    probe = Probe()
    trainer = Trainer(
        model=model,
        args=arguments(tmp_path, num_train_epochs=1),
        train_dataset=Tokens(),
        callbacks=[FreezeCallback("freeze all; unfreeze classifier"), probe],
    )
    assert not model.bert.embeddings.word_embeddings.weight.requires_grad  # applied in __init__
    trainer.train()
    assert set(probe.seen[0]["settings"]) == {"classifier.weight", "classifier.bias"}
    assert trainer.optimizer is not None
    state = trainer.optimizer.state
    assert {id(p) for p in state} == {id(model.classifier.weight), id(model.classifier.bias)}
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]) == (not name.startswith("classifier.")), name


@pytest.mark.slow
@pytest.mark.parametrize(
    ("checkpoint", "own_scheduler"),
    [(2, True), (6, True), (10, True), (6, False)],
    ids=["before-phase-1", "after-phase-1", "after-phase-2", "after-phase-1-trainer-scheduler"],
)
def test_resume_matches_an_uninterrupted_run(
    tmp_path: Path, checkpoint: int, own_scheduler: bool
) -> None:
    kw: dict[str, Any] = {"own_scheduler": own_scheduler}
    full, _, _ = run_bert(tmp_path / "full", save_strategy="steps", save_steps=2, **kw)
    ckpt = tmp_path / "full" / f"checkpoint-{checkpoint}"
    saved = torch.load(ckpt / "optimizer.pt", weights_only=True)
    assert saved[STATE_KEY]["history"] == [t for t in (1, 2) if checkpoint > 4 * t]

    resumed, probe, callback = run_bert(tmp_path / "resumed", resume=str(ckpt), **kw)
    for (name, a), (_, b) in zip(full.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), name
    names = [n for n, _ in resumed.named_parameters()]
    assert probe.seen[-1]["trainable"] == expected_trainable(names, 2)
    assert callback.schedule is not None and callback.schedule.state_dict()["history"] == [1, 2]


@pytest.mark.slow
def test_step_schedule_on_gpt2_resumes_across_the_boundary(tmp_path: Path) -> None:
    rules = "freeze all\nunfreeze transformer.h.1\nat step 5: unfreeze transformer.h.0.mlp\n"

    def run(out: Path, resume: str | None = None) -> tuple[Any, Probe]:
        model = gpt2()
        optimizer = build_optimizer(
            model, rules, lr=LR, optimizer_cls=torch.optim.SGD, momentum=0.9
        )
        probe = Probe("step")
        Trainer(
            model=model,
            args=arguments(out, num_train_epochs=2, save_strategy="steps", save_steps=3),
            train_dataset=Tokens(lm=True),
            optimizers=(optimizer, get_constant_schedule(optimizer)),
            callbacks=[FreezeCallback(rules), probe],
        ).train(resume_from_checkpoint=resume)
        return model, probe

    full, probe = run(tmp_path / "full")
    mlp = {n for n, _ in full.named_parameters() if n.startswith("transformer.h.0.mlp.")}
    assert len(mlp) == 4
    for seen in probe.seen:
        assert (mlp <= seen["trainable"]) == (seen["time"] >= 5), seen["time"]
        assert set(seen["settings"]) == seen["trainable"]
    resumed, _ = run(tmp_path / "resumed", resume=str(tmp_path / "full" / "checkpoint-6"))
    for (name, a), (_, b) in zip(full.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), name


# ----------------------------------------------------------------- loud failures


def train_fails(tmp_path: Path, match: str, *, model: Any = None, **trainer_kw: Any) -> None:
    """train() raises UsageError(match) before any step: no parameter moved."""
    model = model if model is not None else bert()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer_kw.setdefault("args", arguments(tmp_path))
    trainer = Trainer(model=model, train_dataset=Tokens(), **trainer_kw)
    with pytest.raises(freezedsl.UsageError, match=match):
        trainer.train()
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_lr_statements_with_the_trainers_own_optimizer_fail(tmp_path: Path) -> None:
    train_fails(
        tmp_path,
        r"the Trainer's own optimizer ignores the rules' lr statements: "
        r"bert\.encoder\.layer\.1\..* has lr 0\.001, the rules give 0\.0001",
        callbacks=[
            FreezeCallback(
                "freeze all; unfreeze bert.encoder.layer.1; lr 0.1x bert.encoder.layer.1"
            )
        ],
    )


def test_weight_decay_statement_the_trainer_happens_to_follow_is_accepted(tmp_path: Path) -> None:
    """The Trainer's AdamW puts biases and LayerNorm weights at weight decay 0 already."""
    model = bert()
    rules = "freeze bert.embeddings; weight_decay 0 **.bias, **.LayerNorm"
    Trainer(
        model=model,
        args=arguments(tmp_path, max_steps=1),
        train_dataset=Tokens(),
        callbacks=[FreezeCallback(rules)],
    ).train()


def test_optimizer_built_before_the_freeze_fails(tmp_path: Path) -> None:
    model = bert()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)  # every parameter, frozen ones too
    train_fails(
        tmp_path,
        r"the optimizer holds 3[0-9] parameter tensors the rules freeze \(bert\.embeddings",
        model=model,
        optimizers=(optimizer, None),
        callbacks=[FreezeCallback("freeze all; unfreeze classifier")],
    )


def test_callback_added_after_the_trainer_was_built_fails(tmp_path: Path) -> None:
    model = bert()
    trainer = Trainer(model=model, args=arguments(tmp_path), train_dataset=Tokens())
    trainer.add_callback(FreezeCallback("freeze all; unfreeze classifier"))
    with pytest.raises(freezedsl.UsageError, match=r"added after Trainer\(\.\.\.\) was built"):
        trainer.train()


def test_phases_with_the_trainers_own_optimizer_and_checkpoints_fail(tmp_path: Path) -> None:
    train_fails(
        tmp_path,
        r"change the trainable set at epoch 1, and the Trainer's own optimizer cannot resume",
        args=arguments(tmp_path, save_strategy="epoch"),
        callbacks=[
            FreezeCallback("freeze all; unfreeze classifier\nat epoch 1: unfreeze bert.pooler")
        ],
    )


def test_phases_with_the_trainers_own_optimizer_without_checkpoints_run(tmp_path: Path) -> None:
    model = bert()
    callback = FreezeCallback("freeze all; unfreeze classifier\nat epoch 1: unfreeze bert.pooler")
    Trainer(
        model=model,
        args=arguments(tmp_path, num_train_epochs=2),
        train_dataset=Tokens(),
        callbacks=[callback],
    ).train()
    assert [c.unfrozen for c in callback.changes] == [
        ("bert.pooler.dense.weight", "bert.pooler.dense.bias")
    ]
    group = callback.schedule.optimizer.param_groups[-1]  # type: ignore[union-attr]
    assert (group["initial_lr"], group["weight_decay"]) == (LR, WD)  # the Trainer's base values


def test_unfreezing_phase_with_the_trainers_scheduler_and_checkpoints_fails(tmp_path: Path) -> None:
    """A hand-built optimizer has no groups reserved for the phases (build_optimizer has)."""
    model = bert()
    freezedsl.apply(model, freezedsl.compile(BERT_RULES).at(epoch=0))
    optimizer = torch.optim.AdamW(
        freezedsl.param_groups(model, BERT_RULES, lr=LR, weight_decay=WD), lr=LR, weight_decay=WD
    )
    train_fails(
        tmp_path,
        r"a phase of the rules unfreezes parameters .* the LR scheduler the Trainer builds",
        model=model,
        args=arguments(tmp_path, save_strategy="steps", save_steps=2),
        optimizers=(optimizer, None),
        callbacks=[FreezeCallback(BERT_RULES)],
    )


def test_optimizer_built_for_other_rules_fails(tmp_path: Path) -> None:
    model = bert()
    optimizer = build_optimizer(model, BERT_RULES, lr=LR, weight_decay=WD)
    with pytest.raises(freezedsl.UsageError, match="built by build_optimizer with other rules"):
        Trainer(
            model=model,
            args=arguments(tmp_path),
            train_dataset=Tokens(),
            optimizers=(optimizer, None),
            callbacks=[FreezeCallback(BERT_RULES.replace("0.1x", "0.5x"))],
        )


@pytest.mark.slow
def test_resume_with_other_rules_fails(tmp_path: Path) -> None:
    run_bert(tmp_path / "full", save_strategy="steps", save_steps=6, max_steps=6)
    rules = BERT_RULES.replace("0.1x", "0.5x")
    model = bert()
    optimizer = build_optimizer(model, rules, lr=LR, weight_decay=WD)
    trainer = Trainer(
        model=model,
        args=arguments(tmp_path / "resumed"),
        train_dataset=Tokens(),
        optimizers=(optimizer, get_constant_schedule(optimizer)),
        callbacks=[FreezeCallback(rules)],
    )
    with pytest.raises(freezedsl.UsageError, match="saved with different rules"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-6"))


@pytest.mark.slow
def test_trainer_run_equals_a_hand_written_loop(tmp_path: Path) -> None:
    """The phases land on the same optimizer steps as in a plain loop that sets
    requires_grad and edits the optimizer by hand (in-order batches, no clipping):
    the same weights, bit for bit."""
    trained, _, _ = run_bert(tmp_path, train_sampling_strategy="sequential", max_grad_norm=0.0)

    model = bert()
    params = dict(model.named_parameters())
    for name, p in params.items():
        p.requires_grad_(name in expected_trainable(list(params), 0))

    def groups(names: list[str]) -> list[dict[str, Any]]:
        decay = [n for n in names if expected_settings(n)[1]]
        no_decay = [n for n in names if not expected_settings(n)[1]]
        return [
            {
                "params": [params[n] for n in part],
                "lr": expected_settings(part[0])[0],
                "weight_decay": wd,
            }
            for part, wd in ((decay, WD), (no_decay, 0.0))
        ]

    layer1 = [n for n in params if n.startswith("bert.encoder.layer.1.")]
    reserved = groups(layer1)  # empty until epoch 1, as build_optimizer reserves them
    for group in reserved:
        group["params"] = []
    first = groups(sorted(expected_trainable(list(params), 0)))
    optimizer = torch.optim.AdamW(first + reserved, lr=LR)
    scheduler = get_linear_schedule_with_warmup(optimizer, 2, 12)
    data = Tokens()
    for epoch in range(3):
        if epoch == 1:
            for n in layer1:
                params[n].requires_grad_(True)
            for slot, group in zip(optimizer.param_groups[2:], groups(layer1)):
                slot["params"].extend(group["params"])
        if epoch == 2:
            for p in model.bert.pooler.parameters():
                p.requires_grad_(False)
                p.grad = None
                optimizer.state.pop(p, None)
                for group in optimizer.param_groups:
                    group["params"] = [q for q in group["params"] if q is not p]
        for start in range(0, N, BATCH):
            items = [data[i] for i in range(start, start + BATCH)]
            batch = {k: torch.stack([item[k] for item in items]) for k in items[0]}
            model(**batch).loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    for (name, a), (_, b) in zip(trained.named_parameters(), model.named_parameters()):
        assert torch.equal(a, b), name


def test_callback_base_lr_other_than_the_optimizers_fails(tmp_path: Path) -> None:
    model = bert()
    optimizer = build_optimizer(model, BERT_RULES, lr=LR, weight_decay=WD)
    with pytest.raises(freezedsl.UsageError, match=r"FreezeCallback\(lr=0\.01\) differs"):
        Trainer(
            model=model,
            args=arguments(tmp_path),
            train_dataset=Tokens(),
            optimizers=(optimizer, None),
            callbacks=[FreezeCallback(BERT_RULES, lr=0.01)],
        )
