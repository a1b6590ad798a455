# Source: https://github.com/idstcv/SoftTriple/issues/4
# --freeze_BN only puts BatchNorm in eval mode; its weight and bias still get gradients
# and are passed to the optimizer, so the "frozen" BN layers keep training.
# Static: not reported (intent is not visible in the code).
import torch


def setup(model, args):
    if args.freeze_BN:
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()  # <- bug
    return torch.optim.Adam(model.parameters(), lr=args.modellr)
