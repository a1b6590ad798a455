"""b02 SoftTriple: --freeze_BN puts BatchNorm in eval mode; its weights still train.

Expect: none (the BN layers are in eval mode with trainable weight and bias, a valid
"statistics-only" freeze; no runtime rule can tell that frozen weights were meant)
"""

from types import SimpleNamespace

from _load import BnNet, bug, images, sgd_step

m = bug("b02")
model = BnNet().train()
opt = m.setup(model, SimpleNamespace(freeze_BN=True, modellr=0.01))
for _ in range(4):
    sgd_step(model, opt, images())
