"""Fine-tune a ResNet-18 with a rule file embedded in a plain PyTorch training loop.

    python examples/finetune_loop.py

What it shows, in the order a real script does it:

1. build the model and replace its head (the new head must exist before the rules run,
   so that the rules decide about it too);
2. apply ``rules/resnet.frz``: compiled, checked (every ``expect`` line) and applied all
   at once; on a wrong model it raises and leaves the model untouched;
3. build the optimizer from the trainable parameters only, *after* freezing;
4. keep BatchNorm running statistics of fully frozen BatchNorm layers fixed: frozen
   ``requires_grad`` stops gradients, not the running-mean/var updates of train mode;
5. train a few steps on synthetic data, then verify nothing frozen moved.

Runs on CPU in a few seconds; no downloads (``weights=None``; load your checkpoint where
the comment says so).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

import freezedsl

RULES = Path(__file__).resolve().parent.parent / "rules" / "resnet.frz"
NUM_CLASSES = 10
STEPS = 5


def build_model() -> nn.Module:
    model = torchvision.models.resnet18(weights=None)
    # model.load_state_dict(torch.load("resnet18-pretrained.pt", weights_only=True))
    model.fc = nn.Linear(model.fc.in_features, NUM_CLASSES)  # new head for our classes
    return model


def frozen_batchnorms(model: nn.Module) -> dict[str, nn.Module]:
    """BatchNorm layers whose affine parameters the rules froze, by name."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        and module.weight is not None
        and not module.weight.requires_grad
    }


def snapshot_frozen(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every frozen parameter and of the buffers of frozen BatchNorm layers."""
    state = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    for name, module in frozen_batchnorms(model).items():
        for bname, buf in module.named_buffers(recurse=False):
            state[f"{name}.{bname}"] = buf.detach().clone()
    return state


def main() -> int:
    torch.manual_seed(0)
    model = build_model()

    # One call: compile the rule file, check its expectations against this model, and
    # set requires_grad for every parameter atomically. The returned plan says which
    # statement decided each parameter.
    rules = freezedsl.load(RULES)
    plan = rules.apply(model)
    print(plan.render())
    print()

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.01, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()

    before = snapshot_frozen(model)
    head_before = model.fc.weight.detach().clone()

    # Synthetic data: one batch of 32 random 32x32 images, fitted for a few steps.
    images = torch.randn(32, 3, 32, 32)
    labels = torch.randint(0, NUM_CLASSES, (32,))

    model.train()
    # Train mode would keep updating the running statistics of the BatchNorm layers the
    # rules froze; put them back in eval mode (do this after every model.train()).
    frozen_bn = frozen_batchnorms(model)
    for module in frozen_bn.values():
        module.eval()
    print(f"BatchNorm layers kept in eval mode (all frozen): {len(frozen_bn)}")
    for step in range(STEPS):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        print(f"step {step + 1}/{STEPS}  loss {loss.item():.4f}")

    now = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    moved = [name for name, old in before.items() if not torch.equal(old, now[name])]
    if moved:
        print(f"FAILED: {len(moved)} frozen tensors changed: {', '.join(moved[:5])}")
        return 1
    if torch.equal(head_before, model.fc.weight):
        print("FAILED: the trainable head did not change")
        return 1
    n_params = sum(1 for p in model.parameters() if not p.requires_grad)
    print(
        f"verified: {n_params} frozen parameter tensors and the running statistics of "
        f"{len(frozen_bn)} frozen BatchNorm layers are unchanged; the head trained"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
