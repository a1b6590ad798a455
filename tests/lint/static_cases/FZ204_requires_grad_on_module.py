"""FZ204 requires-grad-on-module. Lines with an ``expect`` comment must be reported there."""

from torch import nn


def flagged_model(model):
    model.requires_grad = False  # expect: FZ204:5


def flagged_submodule(model):
    model.layer1.requires_grad = False  # expect: FZ204


def flagged_children(model):
    for child in model.children():
        child.requires_grad = False  # expect: FZ204:9


def flagged_named_modules(model):
    for name, module in model.named_modules():
        if "bn" in name:
            module.requires_grad = False  # expect: FZ204


def flagged_indexed(model):
    model.features[0].requires_grad = False  # expect: FZ204
    model.encoder.layer[-1].requires_grad = True  # expect: FZ204


def flagged_by_evidence(gen_a, opt_cls):
    gen_a.requires_grad = False  # expect: FZ204
    return opt_cls(gen_a.parameters())


def flagged_self_attr(self):
    self.text_encoder.requires_grad = False  # expect: FZ204


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.outc = OutConv(64, 2)


class Trainer:
    def freeze_head(self):
        self.model.outc.requires_grad = False  # expect: FZ204


# ---- correct twins: nothing below may be reported


def twin_params(model):
    for p in model.parameters():
        p.requires_grad = False
    for _name, param in model.named_parameters():
        param.requires_grad = True
    model.fc.weight.requires_grad = False
    model.fc.bias.requires_grad = False
    model.cls_token.requires_grad = False
    model.pos_embed.requires_grad = False
    for m in model.modules():
        m.weight.requires_grad = False


def twin_tensors(images, features, x):
    images.requires_grad = True
    features.requires_grad = True
    x.requires_grad = True


def twin_method(model):
    model.layer1.requires_grad_(False)
    model.requires_grad_(False)


def twin_zip_and_guards(teacher_model, student_model, model):
    for teacher, student in zip(teacher_model.parameters(), student_model.parameters()):
        teacher.data.mul_(0.99).add_(student.data, alpha=0.01)
        teacher.requires_grad = False
    for module in vars(model).values():
        if isinstance(module, nn.Parameter):
            module.requires_grad = False
