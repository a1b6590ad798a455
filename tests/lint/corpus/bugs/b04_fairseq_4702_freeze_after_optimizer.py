# Source: https://github.com/facebookresearch/fairseq/issues/4702
# A helper freezes fc1/fc2 after the optimizer was built over all parameters; the
# "frozen" parameters are still updated.
import torch


def freeze_param_grad_zero(model):
    for name, param in model.named_parameters():
        if "fc1" in name or "fc2" in name:
            param.requires_grad = False
    return model


def main(model):
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)  # <- bug
    model = freeze_param_grad_zero(model)
    return optimizer
