# Source: https://github.com/ultralytics/yolov5/issues/1213
# Layers are frozen by name, then the parameter-group loop sets requires_grad = True on
# every parameter, silently undoing the freeze.
import torch


def build(model, hyp):
    freeze = ["model.0.", "model.1."]
    for k, v in model.named_parameters():
        if any(x in k for x in freeze):
            print(f"freezing {k}")
            v.requires_grad = False

    pg0, pg1, pg2 = [], [], []
    for k, v in model.named_parameters():  # <- bug
        v.requires_grad = True
        if ".bias" in k:
            pg2.append(v)
        elif ".weight" in k and ".bn" not in k:
            pg1.append(v)
        else:
            pg0.append(v)
    return torch.optim.SGD(pg0, lr=hyp["lr0"], momentum=hyp["momentum"], nesterov=True)
