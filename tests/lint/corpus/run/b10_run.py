"""b10 gt-pyg: the frozen encoder's BatchNorm is put back in train mode every epoch.

Expect: FZ306
"""

import torch
from _load import bug

m = bug("b10")
m.fit([(torch.randn(8, 8), torch.randn(8, 1)) for _ in range(2)], 3)
