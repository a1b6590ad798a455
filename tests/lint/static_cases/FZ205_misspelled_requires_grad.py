"""FZ205 misspelled-requires-grad. Lines with an ``expect`` comment must be reported there."""


def flagged(model):
    for p in model.backbone.parameters():
        p.require_grad = False  # expect: FZ205:11
    model.fc.weight.requires_grads = True  # expect: FZ205:21
    model.head.require_grad_(False)  # expect: FZ205:16
    model.fc.bias.requiresGrad = False  # expect: FZ205
    model.fc.bias.requries_grad = False  # expect: FZ205
    model.fc.bias.required_grad = False  # expect: FZ205
    model.fc.bias.requiresgrad = False  # expect: FZ205


# ---- correct twins: nothing below may be reported


def twin(model):
    for p in model.parameters():
        p.requires_grad = False
    model.fc.requires_grad_(True)
    print(model.fc.weight.requires_grad)
    model.enable_input_require_grads()
    model.gradient_checkpointing_enable()


class Config:
    def __init__(self, require_grad=True):
        self.require_grad = require_grad
