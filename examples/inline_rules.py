"""Rules written inline in the training script, on a small CNN, in three steps.

    python examples/inline_rules.py

1. a one-liner linear probe: ``freezedsl.apply(model, "freeze all; unfreeze classifier")``;
2. a multi-line rule text with ``expect`` lines, compiled once with
   ``freezedsl.compile`` and previewed with ``plan`` before ``apply``;
3. a typo in a rule: freezedsl raises a located error with a suggestion, and the
   model is left exactly as it was (rules apply all at once or not at all).

Then it trains a few steps on synthetic 8x8 images and checks that frozen parameters
did not move. Uses ``freezedsl.testing:small_cnn`` (features = conv blocks, classifier = one
Linear), runs on CPU in a second or two.
"""

from __future__ import annotations

import torch
from torch import nn

import freezedsl
from freezedsl.testing import small_cnn

# features: [0] conv block, [1] conv block, [2] MaxPool, [3] conv block, [4] pool, [5] flatten
# (see `freezedsl show freezedsl.testing:small_cnn`). Train the last conv block and the
# classifier; keep the first two blocks fixed.
RULES = """
# small_cnn: freeze the first two conv blocks, train the last block and the head
freeze features[:2]
expect frozen features.0, features.1
expect trainable features.3, classifier
expect trainable 70%..90%
"""


def flags(model: nn.Module) -> dict[str, bool]:
    return {name: p.requires_grad for name, p in model.named_parameters()}


def main() -> int:
    torch.manual_seed(0)

    # 1. A one-liner: a linear probe.
    probe = small_cnn(num_classes=10)
    plan = freezedsl.apply(probe, "freeze all; unfreeze classifier")
    print(
        f"linear probe: {len(plan.trainable)} trainable tensors {plan.trainable}, "
        f"{plan.trainable_percent:.1f}% of the parameters"
    )

    # 2. Multi-line rules with expectations: compile once, preview, apply.
    model = small_cnn(num_classes=10)
    rules = freezedsl.compile(RULES)
    preview = rules.plan(model)  # changes nothing
    print(f"preview: trainable {preview.trainable_percent:.1f}%, frozen {preview.frozen}")
    plan = rules.apply(model)
    print(plan.render())
    print()

    # 3. A typo: a located error with a suggestion, and no change to the model.
    before = flags(model)
    try:
        freezedsl.apply(model, "freeze all\nunfreeze classifer")
    except freezedsl.SelectionError as err:
        print("a typo is an error, not a silent no-op:")
        print(err.render())
    else:
        print("FAILED: the typo was not reported")
        return 1
    if flags(model) != before:
        print("FAILED: the failed apply changed the model")
        return 1
    print("the model is unchanged after the failed apply\n")

    # Train: the optimizer gets the trainable parameters only.
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    images = torch.randn(32, 1, 8, 8)
    labels = torch.randint(0, 10, (32,))
    model.train()
    for module in model.features[:2].modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()  # frozen blocks: keep their BatchNorm statistics fixed too
    for step in range(5):
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        print(f"step {step + 1}/5  loss {loss.item():.4f}")

    params = dict(model.named_parameters())
    moved = [n for n, old in frozen.items() if not torch.equal(old, params[n])]
    if moved:
        print(f"FAILED: frozen parameters changed: {moved}")
        return 1
    print(f"verified: {len(frozen)} frozen parameter tensors are unchanged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
