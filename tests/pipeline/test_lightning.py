"""FreezeCallback: phases applied by Lightning's hooks, and checkpoint resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import freezedsl

L = pytest.importorskip("lightning")
from freezedsl.integrations.lightning import FreezeCallback

from .models import Net

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers"),
    pytest.mark.filterwarnings("ignore:.*smaller than the logging interval"),
    pytest.mark.filterwarnings("ignore::UserWarning:lightning"),
    pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\)"),
]

RULES = """
freeze all
unfreeze net.fc
lr 0.1x net.layer2
at epoch 1: unfreeze net.layer2
at epoch 3: freeze net.layer2
"""


class LitNet(L.LightningModule):
    def __init__(self, rules: str = RULES, scheduler: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = Net()
        self.rules = rules
        self.scheduler = scheduler
        self.seen: list[dict[str, Any]] = []  # per epoch: what the callback left us

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.mse_loss(self(x), y)

    def configure_optimizers(self) -> Any:
        # the callback has applied time 0 in setup(), so the planned groups fit the model
        opt = torch.optim.SGD(
            freezedsl.param_groups(self, self.rules, lr=0.1), lr=0.1, momentum=0.9
        )
        if not self.scheduler:
            return opt
        return {
            "optimizer": opt,
            "lr_scheduler": torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.9**e),
        }

    def on_train_epoch_start(self) -> None:  # runs after the callback's hook
        opt = self.trainer.optimizers[0]
        self.seen.append(
            {
                "epoch": self.current_epoch,
                "trainable": [n for n, p in self.named_parameters() if p.requires_grad],
                "groups": [len(g["params"]) for g in opt.param_groups],
                "layer2": self.net.layer2.weight.detach().clone(),
            }
        )

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(1)
        data = TensorDataset(torch.randn(24, 4, generator=g), torch.randn(24, 2, generator=g))
        return DataLoader(data, batch_size=8, shuffle=False)


def trainer(**kw: Any) -> Any:
    opts = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "max_epochs": 4,
    }
    opts.update(kw)
    return L.Trainer(**opts)


def test_phases_applied_at_the_right_epochs() -> None:
    model = LitNet()
    cb = FreezeCallback(RULES)
    trainer(callbacks=[cb]).fit(model)
    seen = model.seen
    assert seen[0]["trainable"] == ["net.fc.weight", "net.fc.bias"]
    assert seen[1]["trainable"] == [
        "net.layer2.weight",
        "net.layer2.bias",
        "net.fc.weight",
        "net.fc.bias",
    ]
    assert seen[3]["trainable"] == ["net.fc.weight", "net.fc.bias"]
    assert [s["groups"] for s in seen] == [[2], [2, 2], [2, 2], [2, 0]]
    assert torch.equal(seen[0]["layer2"], seen[1]["layer2"])  # frozen through epoch 0
    assert not torch.equal(seen[1]["layer2"], seen[2]["layer2"])  # trains from epoch 1
    assert torch.equal(seen[3]["layer2"], model.net.layer2.weight)  # frozen again from 3
    assert [(c.time, c.unfrozen, c.frozen) for c in cb.changes] == [
        (1, ("net.layer2.weight", "net.layer2.bias"), ()),
        (3, (), ("net.layer2.weight", "net.layer2.bias")),
    ]
    opt = cb.schedule.optimizer  # type: ignore[union-attr]
    assert opt.param_groups[1]["lr"] == pytest.approx(0.01)  # 0.1x the optimizer's lr


def test_checkpoint_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    full = LitNet(scheduler=True)
    trainer(callbacks=[FreezeCallback(RULES)]).fit(full)

    first = LitNet(scheduler=True)
    t = trainer(callbacks=[FreezeCallback(RULES)], max_epochs=2)
    t.fit(first)
    ckpt = tmp_path / "mid.ckpt"
    t.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=False)
    assert any(s.get("history") == [1] for s in saved["callbacks"].values() if isinstance(s, dict))

    resumed = LitNet(scheduler=True)
    cb = FreezeCallback(RULES)
    trainer(callbacks=[cb]).fit(resumed, ckpt_path=ckpt)
    assert [s["epoch"] for s in resumed.seen] == [2, 3]
    assert [s["groups"] for s in resumed.seen] == [[2, 2], [2, 0]]
    for (name, a), (_, b) in zip(full.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), name
    assert cb.schedule.state_dict()["history"] == [1, 3]  # type: ignore[union-attr]


def test_resume_with_other_rules_is_refused(tmp_path: Path) -> None:
    t = trainer(callbacks=[FreezeCallback(RULES)], max_epochs=2)
    t.fit(LitNet())
    ckpt = tmp_path / "mid.ckpt"
    t.save_checkpoint(ckpt)
    other = RULES.replace("0.1x", "0.5x")
    with pytest.raises(freezedsl.UsageError, match="different rules"):
        trainer(callbacks=[FreezeCallback(other)]).fit(LitNet(rules=other), ckpt_path=ckpt)


def test_step_schedule_uses_global_step() -> None:
    rules = "freeze all; unfreeze net.fc\nat step 4: unfreeze net.layer1\n"
    model = LitNet(rules=rules)
    cb = FreezeCallback(rules)
    trainer(callbacks=[cb], max_epochs=3).fit(model)  # 3 batches an epoch: step 4 is in epoch 1
    assert [(c.unit, c.time) for c in cb.changes] == [("step", 4)]
    assert [s["groups"] for s in model.seen] == [[2], [2], [2, 2]]
