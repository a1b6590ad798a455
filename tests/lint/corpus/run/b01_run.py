"""b01 pytorch#86590: frozen ResNet-50 with a new head, then net.train().

Expect: FZ306
"""

import torch
from _load import bug

m = bug("b01")
loader = [(torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))) for _ in range(4)]
m.train(loader)
