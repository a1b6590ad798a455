"""c17: periodic evaluation that restores each submodule's mode, BatchNorm frozen.

Expect: clean
"""

from _load import BnNet, bug, images

c = bug("c17")
model = BnNet().train()
loader = [images(i) for i in range(2)]
c.fit(model, loader, loader, 3)
