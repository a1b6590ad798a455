# Control: yolov5's current freeze (ultralytics/yolov5 train.py): layer names end in
# "." so model.1. does not match model.10.
import torch


def build(model, freeze, hyp):
    freeze = [f"model.{x}." for x in (freeze if len(freeze) > 1 else range(freeze[0]))]
    for k, v in model.named_parameters():
        v.requires_grad = True
        if any(x in k for x in freeze):
            v.requires_grad = False
    return torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=hyp["lr0"], momentum=0.9
    )
