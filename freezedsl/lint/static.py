"""Static checks of Python training code (lint family FZ2xx).

The checks read a file with the stdlib :mod:`ast` module and never import or run it, so
they work on scripts that need GPUs, data or packages the linting machine lacks.

How it works: every *scope* (the module body, each function body, each class body) is
walked once, statements in source order, nested blocks (``if``/``for``/``with``/``try``)
included in place. The walk records a flat list of *events* (optimizer built, parameters
frozen or unfrozen, head assigned, model wrapped, ``eval()``/``train()`` called, name
rebound), each keyed by the dotted name of its receiver (``model``, ``self.net.fc``,
``model.classifier[-1]``). Order checks (FZ201-FZ203, FZ207, FZ208) then compare events of
one scope; local checks (FZ204-FZ206, FZ209) report during the walk. There is no alias
analysis beyond dotted names: precision beats recall, and every check has a twin that
must stay silent (see ``tests/lint/static_cases``).

``# noqa`` comments are not handled here; the lint runner filters findings.
This module must not import torch.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from freezedsl.lint.registry import Diagnostic, Rule, Severity, diag, register

__all__ = ["check_file", "check_source"]


# ----------------------------------------------------------------------- rules

SYNTAX_ERROR = register(
    Rule(
        code="FZ002",
        name="python-syntax-error",
        severity=Severity.ERROR,
        summary="A Python file could not be parsed, so none of its FZ2xx checks ran.",
        what="""\
Reports a Python file that ``ast.parse`` rejects (a syntax error, a NUL byte, or
nesting too deep for the parser), at the position the parser gives.
""",
        why="""\
The static checks need a syntax tree. A file that does not parse is not checked at
all, so a clean lint result would say nothing about it.
""",
        example="""\
opt = torch.optim.SGD(model.parameters(), lr=0.1
""",
        use_instead="""\
opt = torch.optim.SGD(model.parameters(), lr=0.1)
""",
    )
)

OPT_BEFORE_FREEZE = register(
    Rule(
        code="FZ201",
        name="optimizer-before-freeze",
        severity=Severity.WARNING,
        summary="An optimizer is built from a model's parameters before part of it is frozen.",
        what="""\
Flags an optimizer constructor (``torch.optim.X``, ``optim.X``, an imported ``SGD``/
``AdamW``/..., with the parameters as the first argument or ``params=``, also inside
parameter groups) over ``M.parameters()`` when later in the same function or module
body parameters of ``M`` or of a submodule of ``M`` are frozen
(``requires_grad_(False)``, ``.requires_grad = False``, ``freezedsl.apply(M, rules)``,
``rules.apply(M)`` on a rule set from ``freezedsl.load``/``compile``).
A freeze that is undone later in the scope (or in the same loop, as in GAN training
that toggles the discriminator) is not reported.
""",
        why="""\
The optimizer keeps every parameter it was given. A frozen parameter whose ``.grad`` is
not reset to ``None`` (``zero_grad(set_to_none=False)``, or a freeze between
``backward()`` and ``step()``) is still moved by momentum and weight decay, its optimizer
state stays in memory, and the optimizer no longer matches what the code says trains.
""",
        example="""\
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
model.backbone.requires_grad_(False)
""",
        use_instead="""\
model.backbone.requires_grad_(False)
opt = torch.optim.AdamW((p for p in model.parameters() if p.requires_grad), lr=1e-4)
""",
    )
)

UNFILTERED_OPT = register(
    Rule(
        code="FZ202",
        name="unfiltered-optimizer",
        severity=Severity.WARNING,
        summary="An optimizer is built from all of a model's parameters after some were frozen.",
        what="""\
Flags an optimizer built from an unfiltered ``M.parameters()`` (no ``filter`` and no
``if p.requires_grad`` in a comprehension) after parameters of ``M`` or of one of its
submodules were frozen earlier in the same scope. Not reported when the freeze is undone
before the optimizer is built, or when the code unfreezes those parameters after
building it (gradual unfreezing keeps them in the optimizer on purpose).
""",
        why="""\
The frozen parameters are handed to the optimizer anyway. Stock ``torch.optim``
optimizers skip parameters without a gradient, but optimizers that allocate state up
front (DeepSpeed ZeRO, 8-bit and fused optimizers) spend memory on them, and anything
that gives them a gradient again later makes them train with no warning. Passing only
trainable parameters states the intent, and fails loudly when nothing is trainable.
""",
        example="""\
for p in model.backbone.parameters():
    p.requires_grad = False
opt = torch.optim.SGD(model.parameters(), lr=0.01)
""",
        use_instead="""\
for p in model.backbone.parameters():
    p.requires_grad = False
opt = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.01)
""",
    )
)

HEAD_FROZEN = register(
    Rule(
        code="FZ203",
        name="head-frozen-by-later-loop",
        severity=Severity.WARNING,
        summary="A new head is assigned, then a later loop freezes every parameter, head included.",
        what="""\
Flags a loop that unconditionally freezes every parameter of ``M``
(``for p in M.parameters(): p.requires_grad = False``, or ``requires_grad_(False)``,
also ``M.requires_grad_(False)``) when earlier in the same scope a new layer with
parameters was assigned to a submodule of ``M`` (``M.fc = nn.Linear(...)``,
``M.classifier[-1] = ...``, ``M.head = MyHead(...)``) and nothing later unfreezes or
replaces that head.
""",
        why="""\
The freshly initialised head is frozen together with the backbone, so training updates
nothing (or only what else was unfrozen) and the head keeps its random weights.
""",
        example="""\
model.fc = nn.Linear(model.fc.in_features, 10)
for p in model.parameters():
    p.requires_grad = False
""",
        use_instead="""\
for p in model.parameters():
    p.requires_grad = False
model.fc = nn.Linear(model.fc.in_features, 10)  # new parameters are trainable
""",
    )
)

GRAD_ON_MODULE = register(
    Rule(
        code="FZ204",
        name="requires-grad-on-module",
        severity=Severity.ERROR,
        summary="`.requires_grad = ...` is assigned on a module, which freezes nothing.",
        what="""\
Flags ``X.requires_grad = value`` where ``X`` is clearly an ``nn.Module``: a loop
variable over ``.modules()``/``.children()``/``named_modules()``/``named_children()``,
a name that the file calls ``.parameters()``/``.modules()``/... on or builds from an
``nn`` class or torchvision builder, or a name such as ``model``, ``net``, ``backbone``,
``encoder``, ``head``, ``fc``, ``layer1``, ``model.layers[0]``. Names that look like
parameters (``p``, ``param``, ``weight``, ``*.bias``, loop variables over
``parameters()``) are never flagged.
""",
        why="""\
``nn.Module`` has no ``requires_grad`` property: the assignment just creates a new
Python attribute on the module object. Every parameter stays trainable and nothing
warns about it.
""",
        example="""\
model.layer1.requires_grad = False
""",
        use_instead="""\
model.layer1.requires_grad_(False)
""",
    )
)

MISSPELLED_GRAD = register(
    Rule(
        code="FZ205",
        name="misspelled-requires-grad",
        severity=Severity.ERROR,
        summary="An attribute name is a misspelling of `requires_grad`/`requires_grad_`.",
        what="""\
Flags assignments to and calls of attributes such as ``require_grad``,
``requires_grads``, ``required_grad``, ``requiresgrad``, ``requiresGrad``,
``require_grad_`` or ``requries_grad`` (a small edit distance from ``requires_grad``).
``self.require_grad = require_grad`` (storing a constructor argument of the same name)
is not reported.
""",
        why="""\
Assigning a misspelled attribute on a tensor or module silently creates a new attribute
and freezes nothing; calling one raises ``AttributeError`` only when that line runs,
possibly hours into a job.
""",
        example="""\
for p in model.backbone.parameters():
    p.require_grad = False
""",
        use_instead="""\
for p in model.backbone.parameters():
    p.requires_grad = False
""",
    )
)

SUBSTRING_NAME = register(
    Rule(
        code="FZ206",
        name="substring-name-match",
        severity=Severity.WARNING,
        summary="A parameter name is matched by substring with a literal that also hits siblings.",
        what="""\
Inside a loop or comprehension over ``named_parameters()``, ``named_modules()``,
``named_children()``, ``named_buffers()`` or ``state_dict()`` (keys or ``.items()``),
flags a string literal that ends in a digit and is used as ``"lit" in name``,
``"lit" not in name``, ``name.startswith("lit")`` (also a tuple of literals),
``name.find("lit")`` or ``name.index("lit")``, also when the literal comes from a
literal list the test iterates over. Literals ending in ``.`` or in a letter are not
reported.
""",
        why="""\
Names are dotted paths, and a digit-final literal is a prefix of its siblings:
``"layer1"`` also matches ``layer10``/``layer11``, ``"blocks.1"`` matches ``blocks.10``
to ``blocks.19``. The rule freezes (or spares) more than intended once the model is
deep enough, without any error.
""",
        example="""\
for name, p in model.named_parameters():
    if name.startswith("blocks.1"):
        p.requires_grad = False
""",
        use_instead="""\
for name, p in model.named_parameters():
    if name.startswith("blocks.1."):
        p.requires_grad = False
# or the freezedsl rule:  freeze blocks.1
""",
    )
)

FREEZE_AFTER_DDP = register(
    Rule(
        code="FZ207",
        name="freeze-after-ddp",
        severity=Severity.ERROR,
        summary="Parameters are frozen after the model was wrapped in DDP or FSDP.",
        what="""\
Flags freezing (``requires_grad_(False)``, ``.requires_grad = False``,
``freezedsl.apply``, ``rules.apply``) of a model, or of anything reached through it, after the model
was wrapped earlier in the same scope by ``DistributedDataParallel``/``DDP``,
``FullyShardedDataParallel``/``FSDP``, ``fully_shard(model)`` or
``accelerator.prepare(model, ...)``. The original name and the wrapper's name both
count.
""",
        why="""\
DDP records which parameters require gradients when it is constructed and builds its
all-reduce buckets from that. Parameters frozen afterwards never get a gradient, so the
reducer waits for them ("Expected to have finished reduction in the prior iteration")
or, with ``find_unused_parameters=True``, pays for searching the graph every step. FSDP
flattens and shards parameters when it wraps them, so ``requires_grad`` has to be
settled before wrapping; changing it afterwards is not supported.
""",
        example="""\
model = DDP(model, device_ids=[rank])
model.module.backbone.requires_grad_(False)
""",
        use_instead="""\
model.backbone.requires_grad_(False)
model = DDP(model, device_ids=[rank])
""",
    )
)

TRAIN_UNDOES_EVAL = register(
    Rule(
        code="FZ208",
        name="train-undoes-eval",
        severity=Severity.WARNING,
        summary="`.train()` on a model puts submodules that were set to eval back in train mode.",
        what="""\
Flags ``M.train()`` (or ``M.train(True)``) when earlier in the same scope a submodule of
``M`` was put in eval mode (``M.backbone.eval()``, ``M.backbone.train(False)``, or
``m.eval()`` under a condition in a loop over ``M.modules()``, typically for frozen
BatchNorm layers) and the submodule's ``eval()`` is not applied again after the
``train()`` call.
""",
        why="""\
``Module.train()`` recurses into every child. The frozen BatchNorm layers go back to
train mode: their running mean and variance drift with every batch even though their
weights are frozen, and dropout in the frozen part turns back on.
""",
        example="""\
model.backbone.eval()
for epoch in range(epochs):
    model.train()
    train_one_epoch(model)
""",
        use_instead="""\
for epoch in range(epochs):
    model.train()
    model.backbone.eval()  # re-apply after every train()
    train_one_epoch(model)
""",
    )
)

PRETRAINED_DEPRECATED = register(
    Rule(
        code="FZ209",
        name="pretrained-deprecated",
        severity=Severity.WARNING,
        summary="A torchvision model builder is called with the deprecated `pretrained=` argument.",
        what="""\
Flags calls of torchvision model builders (resolved through the file's imports:
``torchvision.models.resnet18``, ``models.resnet18`` after ``from torchvision import
models``, an imported ``resnet18``) that pass ``pretrained=`` or ``pretrained_backbone=``.
Builders of other libraries (``timm.create_model(..., pretrained=True)``) are not
reported.
""",
        why="""\
``pretrained`` has been deprecated since torchvision 0.13 and may be removed; today it
is mapped to one fixed set of weights with a warning. ``weights=`` names the exact
checkpoint (and its preprocessing via ``weights.transforms()``), so results do not
change silently when torchvision adds better weights.
""",
        example="""\
model = torchvision.models.resnet18(pretrained=True)
""",
        use_instead="""\
from torchvision.models import ResNet18_Weights
model = torchvision.models.resnet18(weights=ResNet18_Weights.DEFAULT)
""",
    )
)


# ----------------------------------------------------------------------- tables

_OPTIMIZERS = frozenset(
    re.findall(
        r"\w+",
        """SGD Adam AdamW Adamax Adagrad Adadelta RMSprop Rprop ASGD NAdam RAdam LBFGS
        SparseAdam Adafactor Muon Lion LAMB Lamb LARS Adan AdaBelief Novograd AdamP SGDP
        AdamW8bit Adam8bit PagedAdamW PagedAdamW8bit SGD8bit FusedAdam FusedLAMB
        DeepSpeedCPUAdam""",
    )
)
_WRAPPERS = frozenset(
    ("DistributedDataParallel", "DDP", "FullyShardedDataParallel", "FSDP", "fully_shard")
)
# Methods whose receiver is certainly an nn.Module (optimizers have state_dict too).
_MODULE_METHODS = frozenset(
    ("parameters", "named_parameters", "modules", "named_modules", "children", "named_children")
)
_PARAM_LIKE = re.compile(
    r"^(p|param|params|parameter|parameters|w|b|weight|bias|weights|tensor|t|x)$"
    r"|(_|^)(weight|bias|param|token|embed|embedding|scale|gamma|beta|alpha|mask)s?$",
    re.IGNORECASE,
)
_MODULE_WORD = re.compile(
    r"^(?:\w+_)?(?:model|net|network|module|backbone|encoder|decoder|head|heads|classifier"
    r"|features|stem|neck|trunk|layers|blocks|teacher|student|generator|discriminator"
    r"|transformer|unet|vae)$"
    r"|^(?:fc|layer|conv|bn|block|norm)\d*$",
    re.IGNORECASE,
)
# A bare variable needs a stronger name: ``features`` or ``head`` alone may be a tensor.
_BARE_MODULE_WORD = re.compile(
    r"^(?:\w+_)?(?:model|net|network|module|backbone|encoder|decoder|classifier|teacher"
    r"|student|generator|discriminator|transformer|unet|vae)$",
    re.IGNORECASE,
)
# Attribute names a classification/detection head commonly lives under.
_HEAD_WORD = re.compile(
    r"^(?:fc|classifier|head|heads|lm_head|last_linear|output|out|cls|score|final|linear"
    r"|logits|proj|projection|predictor|box_predictor|mask_predictor|aux_classifier)$"
)
# nn classes without parameters: freezing them freezes nothing, so no FZ203.
_PARAMLESS = re.compile(
    r"^(?:Identity|Flatten|Unflatten|Dropout\w*|AlphaDropout|\w*Pool\d?d|ReLU6?|GELU|SiLU"
    r"|Tanh|Sigmoid|Softmax\w*|LogSoftmax|Hardswish|Hardsigmoid|Mish|ELU|SELU|CELU"
    r"|LeakyReLU|Upsample|PixelShuffle|ZeroPad\d?d|ConstantPad\d?d)$"
)
# Helpers whose name says they put norm layers (back) in eval mode.
_REEVAL_HELPER = re.compile(r"freeze|eval|fix_bn|bn_|_bn|batchnorm|norm_stats", re.IGNORECASE)
_NAME_SOURCES = frozenset(("named_parameters", "named_modules", "named_children", "named_buffers"))

# torchvision builder -> stem of its weight enum (``<stem>_Weights``), torchvision 0.29.
_TV_STEMS: dict[str, str] = dict(
    re.findall(
        r"(\w+):(\w+)",
        """
alexnet:AlexNet convnext_base:ConvNeXt_Base convnext_large:ConvNeXt_Large
convnext_small:ConvNeXt_Small convnext_tiny:ConvNeXt_Tiny
deeplabv3_mobilenet_v3_large:DeepLabV3_MobileNet_V3_Large
deeplabv3_resnet101:DeepLabV3_ResNet101 deeplabv3_resnet50:DeepLabV3_ResNet50
densenet121:DenseNet121 densenet161:DenseNet161 densenet169:DenseNet169
densenet201:DenseNet201 efficientnet_b0:EfficientNet_B0 efficientnet_b1:EfficientNet_B1
efficientnet_b2:EfficientNet_B2 efficientnet_b3:EfficientNet_B3
efficientnet_b4:EfficientNet_B4 efficientnet_b5:EfficientNet_B5
efficientnet_b6:EfficientNet_B6 efficientnet_b7:EfficientNet_B7
efficientnet_v2_l:EfficientNet_V2_L efficientnet_v2_m:EfficientNet_V2_M
efficientnet_v2_s:EfficientNet_V2_S
fasterrcnn_mobilenet_v3_large_320_fpn:FasterRCNN_MobileNet_V3_Large_320_FPN
fasterrcnn_mobilenet_v3_large_fpn:FasterRCNN_MobileNet_V3_Large_FPN
fasterrcnn_resnet50_fpn:FasterRCNN_ResNet50_FPN
fasterrcnn_resnet50_fpn_v2:FasterRCNN_ResNet50_FPN_V2 fcn_resnet101:FCN_ResNet101
fcn_resnet50:FCN_ResNet50 fcos_resnet50_fpn:FCOS_ResNet50_FPN googlenet:GoogLeNet
inception_v3:Inception_V3 keypointrcnn_resnet50_fpn:KeypointRCNN_ResNet50_FPN
lraspp_mobilenet_v3_large:LRASPP_MobileNet_V3_Large
maskrcnn_resnet50_fpn:MaskRCNN_ResNet50_FPN maskrcnn_resnet50_fpn_v2:MaskRCNN_ResNet50_FPN_V2
maxvit_t:MaxVit_T mc3_18:MC3_18 mnasnet0_5:MNASNet0_5 mnasnet0_75:MNASNet0_75
mnasnet1_0:MNASNet1_0 mnasnet1_3:MNASNet1_3 mobilenet_v2:MobileNet_V2
mobilenet_v3_large:MobileNet_V3_Large mobilenet_v3_small:MobileNet_V3_Small
mvit_v1_b:MViT_V1_B mvit_v2_s:MViT_V2_S r2plus1d_18:R2Plus1D_18 r3d_18:R3D_18
raft_large:Raft_Large raft_small:Raft_Small regnet_x_16gf:RegNet_X_16GF
regnet_x_1_6gf:RegNet_X_1_6GF regnet_x_32gf:RegNet_X_32GF regnet_x_3_2gf:RegNet_X_3_2GF
regnet_x_400mf:RegNet_X_400MF regnet_x_800mf:RegNet_X_800MF regnet_x_8gf:RegNet_X_8GF
regnet_y_128gf:RegNet_Y_128GF regnet_y_16gf:RegNet_Y_16GF regnet_y_1_6gf:RegNet_Y_1_6GF
regnet_y_32gf:RegNet_Y_32GF regnet_y_3_2gf:RegNet_Y_3_2GF regnet_y_400mf:RegNet_Y_400MF
regnet_y_800mf:RegNet_Y_800MF regnet_y_8gf:RegNet_Y_8GF resnet101:ResNet101
resnet152:ResNet152 resnet18:ResNet18 resnet34:ResNet34 resnet50:ResNet50
resnext101_32x8d:ResNeXt101_32X8D resnext101_64x4d:ResNeXt101_64X4D
resnext50_32x4d:ResNeXt50_32X4D retinanet_resnet50_fpn:RetinaNet_ResNet50_FPN
retinanet_resnet50_fpn_v2:RetinaNet_ResNet50_FPN_V2 s3d:S3D
shufflenet_v2_x0_5:ShuffleNet_V2_X0_5 shufflenet_v2_x1_0:ShuffleNet_V2_X1_0
shufflenet_v2_x1_5:ShuffleNet_V2_X1_5 shufflenet_v2_x2_0:ShuffleNet_V2_X2_0
squeezenet1_0:SqueezeNet1_0 squeezenet1_1:SqueezeNet1_1 ssd300_vgg16:SSD300_VGG16
ssdlite320_mobilenet_v3_large:SSDLite320_MobileNet_V3_Large swin3d_b:Swin3D_B
swin3d_s:Swin3D_S swin3d_t:Swin3D_T swin_b:Swin_B swin_s:Swin_S swin_t:Swin_T
swin_v2_b:Swin_V2_B swin_v2_s:Swin_V2_S swin_v2_t:Swin_V2_T vgg11:VGG11 vgg11_bn:VGG11_BN
vgg13:VGG13 vgg13_bn:VGG13_BN vgg16:VGG16 vgg16_bn:VGG16_BN vgg19:VGG19 vgg19_bn:VGG19_BN
vit_b_16:ViT_B_16 vit_b_32:ViT_B_32 vit_h_14:ViT_H_14 vit_l_16:ViT_L_16 vit_l_32:ViT_L_32
wide_resnet101_2:Wide_ResNet101_2 wide_resnet50_2:Wide_ResNet50_2
""",
    )
)

# A file with none of these substrings cannot produce an FZ2xx finding, so it is only
# parsed (for FZ002). Keeps linting a large tree close to the cost of parsing it.
_TRIGGERS = re.compile(r"(?i:req\w*grad)|freezedsl|named_|state_dict|\.train\b|pretrained")


# ----------------------------------------------------------------------- helpers


def _dotted(node: ast.AST) -> str | None:
    """``a.b[0].c`` for a receiver made of names, attributes and constant subscripts."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append("." + node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            key = _const_index(node.slice)
            if key is None:
                return None
            parts.append(f"[{key}]")
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return "".join(reversed(parts))
        else:
            return None


def _const_index(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, str)):
        return repr(node.value)
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int)
    ):
        return f"-{node.operand.value}"
    return None


def _root(dotted: str) -> str:
    return re.split(r"[.\[]", dotted, maxsplit=1)[0]


def _last(dotted: str) -> str:
    """Last attribute name of a dotted receiver, subscripts dropped."""
    return re.sub(r"\[[^\]]*\]$", "", dotted).rsplit(".", 1)[-1]


def _within(child: str, parent: str) -> bool:
    """``child`` is ``parent`` or reached through it (``model.fc`` is within ``model``)."""
    return child == parent or (child.startswith(parent) and child[len(parent)] in ".[")


def _bool_const(node: ast.AST | None) -> bool | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return None


def _arg(call: ast.Call, pos: int, name: str) -> ast.expr | None:
    if len(call.args) > pos and not any(isinstance(a, ast.Starred) for a in call.args[: pos + 1]):
        return call.args[pos]
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _refs(node: ast.AST, dotted: str) -> bool:
    """Whether ``dotted`` (or something reached through it) is read inside ``node``."""
    root = _root(dotted)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == root:
            return True
    return False


def _uses_whole(node: ast.AST, dotted: str) -> bool:
    """Whether ``dotted`` itself (not just ``dotted.attr``) is used inside ``node``."""
    exact = through = 0
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Name, ast.Attribute, ast.Subscript)) and _dotted(sub) == dotted:
            exact += 1
        if isinstance(sub, (ast.Attribute, ast.Subscript)) and _dotted(sub.value) == dotted:
            through += 1
    return exact > through


def _kwarg(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _typo_of_requires_grad(attr: str) -> bool:
    if attr in ("requires_grad", "requires_grad_"):
        return False
    norm = attr.lower().replace("_", "")
    if norm == "requiresgrad" or norm in ("requiresgradient", "requiregradient"):
        return True
    if not norm.startswith("re") or "gr" not in norm or not 9 <= len(norm) <= 15:
        return False
    return _edit_distance(norm, "requiresgrad") <= 2


def _edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance; inputs are short."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


# ----------------------------------------------------------------------- events


@dataclass(frozen=True)
class _Bind:
    """What a loop variable stands for, e.g. ``p`` in ``for p in model.parameters()``."""

    kind: str  # "param" | "module" | "name" | "lit"
    owner: str | None  # dotted name of the module iterated over
    loop: ast.AST  # the For statement or comprehension that binds it
    depth: int  # enclosing conditions when bound; deeper use means "guarded"
    values: tuple[ast.Constant, ...] = ()  # for "lit": the literal strings


@dataclass
class _Event:
    kind: str  # OPT FREEZE UNFREEZE HEAD WRAP KILL EVAL_SUB TRAIN
    target: str
    node: ast.AST
    branches: tuple[tuple[int, int], ...]
    loops: tuple[int, ...]
    whole: bool = False  # FREEZE: every parameter of target, unconditionally
    loop: ast.AST | None = None  # FREEZE via a loop variable: the loop
    filtered: bool = False  # OPT: parameters filtered by requires_grad
    label: str = ""  # OPT: optimizer name; WRAP: wrapper name
    value: ast.AST | None = None  # KILL: the new value (``model = model.to(dev)`` keeps it)


# Expression nodes that can hold a call or comparison (Name/Constant cannot).
_INNER = (
    ast.Call,
    ast.Attribute,
    ast.Subscript,
    ast.BinOp,
    ast.BoolOp,
    ast.UnaryOp,
    ast.Compare,
    ast.IfExp,
    ast.Dict,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.Starred,
    ast.keyword,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.Await,
    ast.Yield,
    ast.YieldFrom,
    ast.NamedExpr,
    ast.Slice,
    ast.comprehension,
)


def _pos(e: _Event) -> tuple[int, int]:
    return getattr(e.node, "lineno", 0), getattr(e.node, "col_offset", 0)


def _exclusive(a: _Event, b: _Event) -> bool:
    """True when the two events sit in different branches of one ``if``/``match``."""
    if not a.branches or not b.branches:
        return False
    seen = dict(a.branches)
    return any(k in seen and seen[k] != v for k, v in b.branches)


@dataclass
class _File:
    """Per-file facts: imports, names known to be modules, findings."""

    path: str
    lines: list[str]
    aliases: dict[str, str] = field(default_factory=dict)
    star: set[str] = field(default_factory=set)
    tree: ast.Module | None = None
    scanned: bool = False
    modules_: set[str] = field(default_factory=set)
    rule_sets_: set[str] = field(default_factory=set)

    @property
    def modules(self) -> set[str]:
        """Dotted names the file calls ``.parameters()``/``.modules()``/... on or builds
        from an ``nn`` class, a torchvision builder or ``from_pretrained``."""
        self._scan()
        return self.modules_

    @property
    def rule_sets(self) -> set[str]:
        """Names bound to ``freezedsl.load(...)``/``compile``/``rules_from``."""
        self._scan()
        return self.rule_sets_

    def _scan(self) -> None:
        if not self.scanned and self.tree is not None:
            self.scanned = True
            _scan_evidence(self.tree, self)

    out: list[Diagnostic] = field(default_factory=list)
    pending: list[list[ast.stmt]] = field(default_factory=list)

    def qualify(self, node: ast.AST) -> str | None:
        """Dotted callee with its first name replaced by what it was imported as."""
        dotted = _dotted(node)
        if dotted is None or "[" in dotted:
            return None
        root, _, rest = dotted.partition(".")
        if root in self.aliases:
            full = self.aliases[root]
            return f"{full}.{rest}" if rest else full
        if not rest:
            for mod in self.star:
                if mod.startswith("torchvision.models") and root in _TV_STEMS:
                    return f"{mod}.{root}"
        return dotted

    def col(self, line: int, byte_col: int) -> int:
        """1-based character column from ast's 0-based UTF-8 byte offset."""
        if 0 < line <= len(self.lines):
            text = self.lines[line - 1]
            if not text.isascii():
                return len(text.encode("utf-8")[:byte_col].decode("utf-8", "replace")) + 1
        return byte_col + 1

    def report(self, rule: Rule, node: ast.AST, message: str, obj: str | None = None) -> None:
        line = getattr(node, "lineno", 1)
        col = self.col(line, getattr(node, "col_offset", 0))
        self.out.append(diag(rule, message, self.path, line=line, col=col, obj=obj))


def _scan_imports(body: list[ast.stmt], ctx: _File) -> None:
    """Record every import of the file (statements only: imports are never expressions)."""
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    ctx.aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    ctx.aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            if node.module is None or node.level:
                continue
            for a in node.names:
                if a.name == "*":
                    ctx.star.add(node.module)
                else:
                    ctx.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        else:
            for name in ("body", "orelse", "finalbody", "handlers", "cases"):
                stack.extend(getattr(node, name, ()))


def _scan_evidence(tree: ast.Module, ctx: _File) -> None:
    """Dotted names that are certainly modules, and names bound to freezedsl rule sets.

    A full walk of the tree, so it runs only when a check needs it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _MODULE_METHODS:
                recv = _dotted(func.value)
                if recv is not None:
                    ctx.modules_.add(recv)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            if _loads_rules(ctx, node.value):
                into = ctx.rule_sets_
            elif _builds_module(ctx, node.value):
                into = ctx.modules_
            else:
                continue
            into.update(d for d in map(_dotted, node.targets) if d is not None)


def _is_nn_class(qual: str) -> bool:
    """``nn.Linear``, ``torch.nn.Conv2d``, ``torch.nn.modules.conv.Conv2d``: a module class
    (``nn.Parameter``/``nn.parameter.Buffer`` are tensors, ``nn.utils`` holds helpers)."""
    parts = qual.split(".")
    if parts[:2] == ["torch", "nn"]:
        parts = parts[1:]
    if parts[0] != "nn" or len(parts) < 2 or not parts[-1][:1].isupper():
        return False
    return (len(parts) == 2 or parts[1] in ("modules", "parallel")) and not (
        "Parameter" in parts[-1] or parts[-1] == "Buffer"
    )


def _loads_rules(ctx: _File, call: ast.Call) -> bool:
    """``freezedsl.load(path)`` / ``compile(text)`` / ``rules_from(x)``: a rule set."""
    qual = ctx.qualify(call.func) or ""
    return qual in ("freezedsl.load", "freezedsl.compile", "freezedsl.rules_from")


def _builds_module(ctx: _File, call: ast.Call) -> bool:
    qual = ctx.qualify(call.func) or ""
    last = qual.rsplit(".", 1)[-1]
    if _is_nn_class(qual):
        return True
    if qual.startswith("torchvision.models.") and last in _TV_STEMS:
        return True
    return last == "from_pretrained"


def _nn_layer_with_params(ctx: _File, call: ast.Call, attr: str) -> bool:
    """``nn.Linear(...)`` and friends, or ``MyHead(...)`` assigned to a head-like name."""
    qual = ctx.qualify(call.func) or ""
    last = qual.rsplit(".", 1)[-1]
    if not last[:1].isupper() or _PARAMLESS.match(last):
        return False
    if _is_nn_class(qual):
        return True
    return "Parameter" not in last and bool(_HEAD_WORD.match(attr))


# ----------------------------------------------------------------------- the walk


class _Scope:
    """Walks one scope's statements in order, recording events and local findings."""

    def __init__(self, ctx: _File) -> None:
        self.ctx = ctx
        self.events: list[_Event] = []
        self.binds: dict[str, _Bind] = {}
        self.branches: tuple[tuple[int, int], ...] = ()
        self.loops: tuple[int, ...] = ()
        self.depth = 0
        self.wrapped: set[tuple[int, str]] = set()

    # -- statements

    def block(self, body: Iterable[ast.stmt]) -> None:
        for s in body:
            self.stmt(s)

    def stmt(self, s: ast.stmt) -> None:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            outer: list[ast.expr] = list(s.decorator_list)
            if isinstance(s, ast.ClassDef):
                outer += s.bases + [k.value for k in s.keywords]
            else:
                outer += s.args.defaults + [d for d in s.args.kw_defaults if d is not None]
            for e in outer:
                self.expr(e)
            self.ctx.pending.append(s.body)
            self.kill(s.name, s)
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            self.expr(s.iter)
            self.kill_targets(s.target, s)
            saved, saved_loops = self.binds, self.loops
            self.binds = {**saved, **self.bind(s.target, s.iter, s, self.depth)}
            self.loops = saved_loops + (id(s),)
            self.block(s.body)
            self.binds, self.loops = saved, saved_loops
            self.block(s.orelse)
        elif isinstance(s, ast.While):
            self.expr(s.test)
            saved_loops = self.loops
            self.loops = saved_loops + (id(s),)
            self.block(s.body)
            self.loops = saved_loops
            self.block(s.orelse)
        elif isinstance(s, ast.If):
            self.expr(s.test)
            self.branch(s, 0, s.body)
            self.branch(s, 1, s.orelse)
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.kill_targets(item.optional_vars, s)
            self.block(s.body)
        elif isinstance(s, (ast.Try, ast.TryStar)):
            self.block(s.body)
            for h in s.handlers:
                if h.type is not None:
                    self.expr(h.type)
                self.block(h.body)
            self.block(s.orelse)
            self.block(s.finalbody)
        elif isinstance(s, ast.Match):
            self.expr(s.subject)
            for i, case in enumerate(s.cases):
                if case.guard is not None:
                    self.expr(case.guard)
                self.branch(s, i, case.body)
        elif isinstance(s, ast.Assign):
            self.expr(s.value)
            for t in s.targets:
                self.assign(t, s.value, s)
        elif isinstance(s, ast.AnnAssign):
            if s.value is not None:
                self.expr(s.value)
                self.assign(s.target, s.value, s)
        elif isinstance(s, ast.AugAssign):
            self.expr(s.value)
        elif isinstance(s, ast.Delete):
            for t in s.targets:
                self.kill_targets(t, s)
        else:
            for child in ast.iter_child_nodes(s):
                if isinstance(child, ast.expr):
                    self.expr(child)

    def branch(self, s: ast.stmt, index: int, body: list[ast.stmt]) -> None:
        if not body:
            return
        saved = self.branches
        self.branches = saved + ((id(s), index),)
        self.depth += 1
        self.block(body)
        self.depth -= 1
        self.branches = saved

    def assign(self, target: ast.expr, value: ast.expr, stmt: ast.stmt) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            values: list[ast.expr | None] = [None] * len(target.elts)
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                values = list(value.elts)
            wrap = self.wrapper(value) if isinstance(value, ast.Call) else None
            for elt, v in zip(target.elts, values):
                d = _dotted(elt)
                if wrap is not None and d is not None:
                    self.event("WRAP", d, stmt, label=wrap)
                elif v is not None:
                    self.assign(elt, v, stmt)
                else:
                    self.kill_targets(elt, stmt)
            return
        if isinstance(target, ast.Starred):
            self.kill_targets(target, stmt)
            return
        if isinstance(target, ast.Attribute):
            if target.attr == "requires_grad":
                self.assign_requires_grad(target, value)
                return
            if _typo_of_requires_grad(target.attr):
                if not (isinstance(value, ast.Name) and value.id == target.attr):
                    self.typo(target, "set")
                return
        d = _dotted(target)
        if d is None:
            return
        if isinstance(value, ast.Call):
            wrap = self.wrapper(value)
            if wrap is not None:
                self.event("WRAP", d, stmt, label=wrap)
                return
            attr = _last(d)
            if (
                d != _root(d)
                and not _uses_whole(value, d)
                and _nn_layer_with_params(self.ctx, value, attr)
            ):
                self.event("HEAD", d, stmt)
                return
        self.kill(d, stmt, value)

    def assign_requires_grad(self, target: ast.Attribute, value: ast.expr) -> None:
        recv = _dotted(target.value)
        if recv is None:
            return
        flag = _bool_const(value)
        if self.module_like(recv):
            arg = ast.unparse(value)
            self.ctx.report(
                GRAD_ON_MODULE,
                target,
                f"`{recv}.requires_grad = {ast.unparse(value)}` only sets a plain attribute on "
                f"a module and freezes nothing; call `{recv}.requires_grad_({arg})`",
                obj=recv,
            )
            return
        if flag is not None:
            self.grad_change(recv, flag, target, whole=False)

    def kill_targets(self, target: ast.AST, stmt: ast.stmt) -> None:
        for sub in ast.walk(target):
            d = _dotted(sub)
            if d is not None and isinstance(getattr(sub, "ctx", None), (ast.Store, ast.Del)):
                self.kill(d, stmt)

    def kill(self, dotted: str, stmt: ast.AST, value: ast.AST | None = None) -> None:
        self.event("KILL", dotted, stmt, value=value)
        if dotted in self.binds:  # copy: the dict may be shared with an enclosing loop
            self.binds = {k: v for k, v in self.binds.items() if k != dotted}

    def event(self, kind: str, target: str, node: ast.AST, **kw: object) -> _Event:
        ev = _Event(kind, target, node, self.branches, self.loops, **kw)  # type: ignore[arg-type]
        self.events.append(ev)
        return ev

    # -- loop variables

    def bind(self, target: ast.expr, it: ast.expr, loop: ast.AST, depth: int) -> dict[str, _Bind]:
        """Bindings made by ``for target in it`` (or a comprehension generator)."""
        while (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id in ("list", "tuple", "iter", "reversed", "sorted")
            and len(it.args) == 1
        ):
            it = it.args[0]
        out: dict[str, _Bind] = {}
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id == "enumerate"
            and it.args
            and isinstance(target, ast.Tuple)
            and len(target.elts) == 2
        ):
            return self.bind(target.elts[1], it.args[0], loop, depth)
        if isinstance(it, (ast.List, ast.Tuple, ast.Set)) and isinstance(target, ast.Name):
            lits = tuple(
                e for e in it.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
            )
            if lits and len(lits) == len(it.elts):
                out[target.id] = _Bind("lit", None, loop, depth, lits)
            return out
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute)):
            return out
        method = it.func.attr
        recv = it.func.value
        items = False
        if method in ("items", "keys") and isinstance(recv, ast.Call):
            inner = recv.func
            if isinstance(inner, ast.Attribute) and inner.attr == "state_dict":
                items = method == "items"
                method, recv = "state_dict", inner.value
        owner = self.resolve(_dotted(recv))
        names = target.elts if isinstance(target, ast.Tuple) else [target]
        if method == "parameters" and isinstance(target, ast.Name):
            out[target.id] = _Bind("param", owner, loop, depth)
        elif method in ("modules", "children") and isinstance(target, ast.Name):
            out[target.id] = _Bind("module", owner, loop, depth)
        elif method in _NAME_SOURCES and len(names) == 2:
            if isinstance(names[0], ast.Name):
                out[names[0].id] = _Bind("name", owner, loop, depth)
            if isinstance(names[1], ast.Name):
                kind = "param" if method == "named_parameters" else "module"
                if method != "named_buffers":
                    out[names[1].id] = _Bind(kind, owner, loop, depth)
        elif (
            method == "state_dict" and isinstance(names[0], ast.Name) and items == (len(names) == 2)
        ):
            out[names[0].id] = _Bind("name", owner, loop, depth)
        return out

    def resolve(self, dotted: str | None) -> str | None:
        """Map a receiver through module loop variables: ``m.conv`` -> ``model.*.conv``."""
        if dotted is None:
            return None
        root = _root(dotted)
        b = self.binds.get(root)
        if b is None:
            return dotted
        if b.kind != "module" or b.owner is None:
            return None
        return b.owner + ".*" + dotted[len(root) :]

    def module_like(self, recv: str) -> bool:
        """``recv`` is clearly an ``nn.Module`` (not a parameter or a plain tensor)."""
        b = self.binds.get(_root(recv))
        if b is not None:
            return b.kind == "module" and recv == _root(recv)
        if recv in self.ctx.modules:
            return True
        last = _last(recv)
        if recv.endswith("]"):
            return not _PARAM_LIKE.search(last) and bool(_MODULE_WORD.match(last))
        if _PARAM_LIKE.search(last):
            return False
        if recv == last:
            return bool(_BARE_MODULE_WORD.match(last))
        return bool(_MODULE_WORD.match(last))

    # -- expressions

    def expr(self, node: ast.expr) -> None:
        """Visit one expression iteratively (deep trees must not hit the recursion limit)."""
        first = len(self.events)
        stack: list[tuple[ast.AST, dict[str, _Bind], int]] = [(node, self.binds, self.depth)]
        while stack:
            n, binds, depth = stack.pop()
            if isinstance(n, ast.Lambda):
                continue
            if isinstance(n, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
                local = dict(binds)
                guarded = depth + (1 if any(g.ifs for g in n.generators) else 0)
                for g in n.generators:
                    stack.append((g.iter, local, depth))
                    saved = self.binds
                    self.binds = local
                    local.update(self.bind(g.target, g.iter, n, depth))
                    self.binds = saved
                    for cond in g.ifs:
                        stack.append((cond, local, depth))
                elts = [n.key, n.value] if isinstance(n, ast.DictComp) else [n.elt]
                for e in elts:
                    stack.append((e, local, guarded))
                continue
            if isinstance(n, ast.Call):
                self.call(n, binds, depth)
            elif isinstance(n, ast.Compare):
                self.compare(n, binds)
            for name in n._fields:
                child = getattr(n, name, None)
                if isinstance(child, list):
                    stack.extend((c, binds, depth) for c in child if isinstance(c, _INNER))
                elif isinstance(child, _INNER):
                    stack.append((child, binds, depth))
        if len(self.events) - first > 1:
            self.events[first:] = sorted(self.events[first:], key=_pos)

    def call(self, node: ast.Call, binds: dict[str, _Bind], depth: int) -> None:
        func = node.func
        saved = self.binds
        self.binds = binds
        try:
            if isinstance(func, ast.Attribute):
                self.method_call(node, func, depth)
            qual = self.ctx.qualify(func)
            if qual is not None:
                self.named_call(node, qual)
            self.maybe_reeval(node)
            if self.applies_rules(node):
                model = _arg(node, 0, "model")
                d = self.resolve(_dotted(model)) if model is not None else None
                if d is not None:
                    self.event("FREEZE", d, node)
        finally:
            self.binds = saved

    def method_call(self, node: ast.Call, func: ast.Attribute, depth: int) -> None:
        attr = func.attr
        recv = _dotted(func.value)
        if attr == "requires_grad_":
            arg = _arg(node, 0, "requires_grad")
            flag = True if arg is None else _bool_const(arg)
            if recv is not None and flag is not None:
                self.grad_change(recv, flag, node, whole=True, depth=depth)
        elif _typo_of_requires_grad(attr):
            self.typo(func, "call")
        elif attr in ("eval", "train") and recv is not None:
            mode = attr == "train"
            if attr == "train" and (node.args or node.keywords):
                mode_arg = _bool_const(_arg(node, 0, "mode"))
                if mode_arg is None:
                    return
                mode = mode_arg
            elif attr == "eval" and (node.args or node.keywords):
                return
            if mode:
                if recv in self.binds:
                    return
                self.event("TRAIN", recv, node)
                return
            b = self.binds.get(_root(recv))
            if b is not None:
                if b.kind == "module" and b.owner is not None and depth > b.depth:
                    self.event("EVAL_SUB", b.owner + ".*" + recv[len(_root(recv)) :], node)
            elif recv != _root(recv) and _last(recv) != "module":  # DDP's .module is whole
                self.event("EVAL_SUB", recv, node)
        elif attr in ("startswith", "find", "index") and isinstance(func.value, ast.Name):
            b = self.binds.get(func.value.id)
            if b is not None and b.kind == "name" and node.args:
                self.substring(node.args[0], func.value.id, attr)

    def named_call(self, node: ast.Call, qual: str) -> None:
        parts = qual.split(".")
        last = parts[-1]
        if last in _OPTIMIZERS or (len(parts) > 1 and parts[-2] == "optim" and last[:1].isupper()):
            params = _arg(node, 0, "params")
            if params is not None:
                for owner, filtered in self.param_sources(params):
                    self.event("OPT", owner, node, filtered=filtered, label=last)
        elif last in _WRAPPERS or last == "prepare":
            self.wrapper(node)
        elif parts[0] == "torchvision":
            for kw in node.keywords:
                if kw.arg in ("pretrained", "pretrained_backbone"):
                    self.pretrained(node, kw, parts)

    def maybe_reeval(self, call: ast.Call) -> None:
        """``freeze_bn(model)`` or ``model.apply(set_bn_eval)``: a helper that probably puts
        norm layers back in eval mode, which FZ208 cannot see into."""
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if isinstance(func, ast.Attribute) and name == "apply" and call.args:
            helper = call.args[0]
            hname = helper.id if isinstance(helper, ast.Name) else getattr(helper, "attr", "")
            recv = _dotted(func.value)
            if recv is not None and _REEVAL_HELPER.search(hname):
                self.event("REEVAL", recv, call)
            return
        if not _REEVAL_HELPER.search(name):
            return
        for a in call.args:
            d = self.resolve(_dotted(a))
            if d is not None:
                self.event("REEVAL", d, call)

    def applies_rules(self, call: ast.Call) -> bool:
        """``freezedsl.apply(model, rules)`` or ``rules.apply(model)`` on a loaded rule set
        (``model.apply(fn)`` is ``nn.Module.apply`` and is not one)."""
        func = call.func
        if isinstance(func, ast.Name):
            return func.id == "apply" and self.ctx.aliases.get("apply") == "freezedsl.apply"
        if not isinstance(func, ast.Attribute) or func.attr != "apply":
            return False
        if (self.ctx.qualify(func) or "") == "freezedsl.apply":
            return True
        recv = func.value
        if isinstance(recv, ast.Call):
            return _loads_rules(self.ctx, recv)
        return _dotted(recv) in self.ctx.rule_sets

    def wrapper(self, call: ast.Call) -> str | None:
        """Name of the DDP/FSDP-style wrapper ``call`` builds; also records the wrapped arg."""
        qual = self.ctx.qualify(call.func)
        if qual is None:
            return None
        parts = qual.split(".")
        if parts[-1] in _WRAPPERS:
            name = parts[-1]
            args = [_arg(call, 0, "module")]
        elif parts[-1] == "prepare" and len(parts) > 1 and "accelerator" in parts[-2].lower():
            name = "accelerator.prepare"
            args = list(call.args)
        else:
            return None
        for a in args:
            d = _dotted(a) if a is not None else None
            if d is not None and (id(call), d) not in self.wrapped:
                self.wrapped.add((id(call), d))
                self.event("WRAP", d, call, label=name)
        return name

    def param_sources(self, node: ast.expr, filtered: bool = False) -> Iterator[tuple[str, bool]]:
        """Modules whose ``.parameters()`` flow into an optimizer argument."""
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in ("parameters", "named_parameters"):
                if not node.args and not node.keywords:
                    owner = self.resolve(_dotted(f.value))
                    if owner is not None:
                        yield owner, filtered
            elif isinstance(f, ast.Name) and f.id == "filter" and len(node.args) == 2:
                yield from self.param_sources(node.args[1], True)
            elif isinstance(f, ast.Name) and f.id in ("list", "tuple", "iter") and node.args:
                yield from self.param_sources(node.args[0], filtered)
            elif isinstance(f, (ast.Name, ast.Attribute)) and (
                (f.id if isinstance(f, ast.Name) else f.attr) == "chain"
            ):
                for a in node.args:
                    yield from self.param_sources(a, filtered)
        elif isinstance(node, (ast.ListComp, ast.GeneratorExp)) and len(node.generators) == 1:
            g = node.generators[0]
            yield from self.param_sources(g.iter, filtered or bool(g.ifs))
        elif isinstance(node, (ast.List, ast.Tuple)):
            for e in node.elts:
                if isinstance(e, ast.Dict):
                    for k, v in zip(e.keys, e.values):
                        if isinstance(k, ast.Constant) and k.value == "params":
                            yield from self.param_sources(v, filtered)
                else:
                    yield from self.param_sources(e, filtered)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            yield from self.param_sources(node.left, filtered)
            yield from self.param_sources(node.right, filtered)

    def grad_change(
        self, recv: str, flag: bool, node: ast.AST, *, whole: bool, depth: int | None = None
    ) -> None:
        """Record a freeze/unfreeze of ``recv`` (a loop variable maps to its owner)."""
        kind = "UNFREEZE" if flag else "FREEZE"
        root = _root(recv)
        b = self.binds.get(root)
        if b is None:
            self.event(kind, recv, node, whole=whole)
            return
        if b.owner is None or b.kind == "name" or b.kind == "lit":
            return
        if b.kind == "param" and recv == root:
            d = self.depth if depth is None else depth
            self.event(kind, b.owner, node, whole=d == b.depth, loop=b.loop)
        elif b.kind == "module":
            self.event(kind, b.owner + ".*" + recv[len(root) :], node, loop=b.loop)

    # -- local checks

    def typo(self, node: ast.Attribute, how: str) -> None:
        attr = node.attr
        right = "requires_grad_" if attr.endswith("_") or how == "call" else "requires_grad"
        effect = (
            "silently creates a new attribute and freezes nothing"
            if how == "set"
            else "raises AttributeError when it runs"
        )
        self.ctx.report(
            MISSPELLED_GRAD,
            _attr_pos(node),
            f"`.{attr}` is a misspelling of `.{right}`; this {effect}",
            obj=attr,
        )

    def compare(self, node: ast.Compare, binds: dict[str, _Bind]) -> None:
        if len(node.ops) != 1 or not isinstance(node.ops[0], (ast.In, ast.NotIn)):
            return
        right = node.comparators[0]
        if not isinstance(right, ast.Name):
            return
        b = binds.get(right.id)
        if b is None or b.kind != "name":
            return
        saved = self.binds
        self.binds = binds
        self.substring(node.left, right.id, "in")
        self.binds = saved

    def substring(self, lit: ast.expr, name: str, how: str) -> None:
        """Report digit-final literals used as substring/prefix tests on ``name``."""
        lits: list[ast.Constant] = []
        if isinstance(lit, ast.Constant) and isinstance(lit.value, str):
            lits.append(lit)
        elif isinstance(lit, ast.Tuple) and how == "startswith":
            lits += [
                e for e in lit.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
        elif isinstance(lit, ast.Name):
            b = self.binds.get(lit.id)
            if b is not None and b.kind == "lit":
                lits += b.values
        for c in lits:
            text = str(c.value)
            if not text or not text[-1].isdigit():
                continue
            sibling = f'"{text}0"'
            if how == "startswith":
                test = f'`{name}.startswith("{text}")`'
                fix = f'`{name}.startswith("{text}.")` (or `{name} == "{text}"`)'
                selector = text
            else:
                test = f'`"{text}" in {name}`' if how == "in" else f'`{name}.{how}("{text}")`'
                fix = (
                    f'`"{text}" in {name}.split(".")`'
                    if "." not in text
                    else f'`".{text}." in f".{{{name}}}."`'
                )
                selector = "**." + text
            self.ctx.report(
                SUBSTRING_NAME,
                c,
                f"{test} also matches sibling names such as {sibling}; test whole name "
                f"segments with {fix} or use the freezedsl selector `{selector}`",
                obj=text,
            )

    def pretrained(self, node: ast.Call, kw: ast.keyword, parts: list[str]) -> None:
        builder = parts[-1]
        stem = _TV_STEMS.get(builder)
        quantized = "quantization" in parts
        if kw.arg == "pretrained_backbone":
            backbone = max(
                (k for k in _TV_STEMS if k in builder and k != builder), key=len, default=""
            )
            enum = f"{_TV_STEMS[backbone]}_Weights" if backbone else None
            new_kw = "weights_backbone"
        else:
            enum = None
            if stem is not None:
                q = quantized and _bool_const(_kwarg(node, "quantize")) is True
                enum = f"{stem}_QuantizedWeights" if q else f"{stem}_Weights"
            new_kw = "weights"
        enum_text = f"{enum}.DEFAULT" if enum else "the builder's *_Weights enum (.DEFAULT)"
        flag = _bool_const(kw.value)
        if flag is True:
            fix = f"{new_kw}={enum_text}"
        elif flag is False:
            fix = f"{new_kw}=None"
        else:
            fix = f"{new_kw}={enum_text} if {ast.unparse(kw.value)} else None"
        self.ctx.report(
            PRETRAINED_DEPRECATED,
            kw,
            f"`{kw.arg}=` of torchvision's {builder}() is deprecated since torchvision 0.13; "
            f"pass {fix}",
            obj=builder,
        )


def _attr_pos(node: ast.Attribute) -> ast.AST:
    """A node-like position pointing at the attribute name itself when it is on one line."""
    end_line = node.end_lineno or node.lineno
    end_col = node.end_col_offset
    if end_line == node.lineno and end_col is not None:
        pos = ast.Name(id=node.attr)
        pos.lineno = end_line
        pos.col_offset = end_col - len(node.attr.encode("utf-8"))
        return pos
    return node


# ----------------------------------------------------------------------- order checks


def _show(f: _Event, *, past: bool = False) -> str:
    """``model.backbone is`` / ``parameters of model are`` / ``submodules of model are``."""
    one, many = ("was", "were") if past else ("is", "are")
    if f.target.endswith(".*"):
        return f"submodules of {f.target[:-2]} {many}"
    if ".*" in f.target:
        return f"{f.target.replace('.*', '.<submodule>')} of some submodules {many}"
    if f.loop is not None and not f.whole:
        return f"parameters of {f.target} {many}"
    return f"{f.target} {one}"


def _killed(events: list[_Event], i: int, j: int, *targets: str) -> bool:
    """Whether one of ``targets`` is rebound between event ``i`` and event ``j``."""
    for k in range(i + 1, j):
        e = events[k]
        if e.kind in ("KILL", "HEAD") and any(_within(t, e.target) for t in targets):
            if e.kind == "KILL" and e.value is not None and _refs(e.value, e.target):
                continue  # `model = model.to(device)` rebinds the same object
            return True
    return False


def _reverted(
    events: list[_Event], j: int, lo: int, hi: int | None = None, *, partial: bool = False
) -> bool:
    """The freeze at ``j`` is unfrozen again between events ``lo`` and ``hi`` (exclusive),
    or toggled inside a loop that also holds the freeze (GAN-style). ``partial`` also
    counts unfreezing only a part of the frozen module."""
    f = events[j]
    own = {id(f.loop)} if f.loop is not None else set()
    for k, u in enumerate(events):
        if u.kind != "UNFREEZE":
            continue
        if not (_within(f.target, u.target) or (partial and _within(u.target, f.target))):
            continue
        other = {id(u.loop)} if u.loop is not None else set()
        # In a shared outer loop, even `if warmup: freeze / else: unfreeze` toggles.
        if (set(f.loops) & set(u.loops)) - own - other:
            return True
        if lo < k and (hi is None or k < hi) and not _exclusive(f, u):
            return True
    return False


def _check_scope(ctx: _File, events: list[_Event]) -> None:
    lines = {id(e.node): getattr(e.node, "lineno", 0) for e in events}
    for i, e in enumerate(events):
        if e.kind == "OPT":
            _check_opt(ctx, events, i, lines)
        elif e.kind == "FREEZE":
            _check_freeze(ctx, events, i, lines)
        elif e.kind == "TRAIN":
            _check_train(ctx, events, i, lines)


def _check_opt(ctx: _File, events: list[_Event], i: int, lines: dict[int, int]) -> None:
    opt = events[i]
    for j in range(i + 1, len(events)):
        f = events[j]
        if f.kind != "FREEZE" or not _within(f.target, opt.target) or _exclusive(opt, f):
            continue
        if _killed(events, i, j, opt.target, f.target) or _reverted(events, j, j):
            continue
        ctx.report(
            OPT_BEFORE_FREEZE,
            opt.node,
            f"{opt.label} is built from {opt.target}.parameters() before {_show(f)} frozen "
            f"at line {lines[id(f.node)]}, so the frozen parameters stay in the optimizer; "
            f"freeze first, then build it from the trainable parameters only",
            obj=opt.target,
        )
        break
    if opt.filtered:
        return
    for j in range(i - 1, -1, -1):
        f = events[j]
        if f.kind != "FREEZE" or not _within(f.target, opt.target) or _exclusive(opt, f):
            continue
        if _killed(events, j, i, opt.target, f.target):
            continue
        if _reverted(events, j, j, i) or _reverted(events, j, i, partial=True):
            continue
        ctx.report(
            UNFILTERED_OPT,
            opt.node,
            f"{opt.label} gets every parameter of {opt.target} although "
            f"{_show(f, past=True)} frozen at line {lines[id(f.node)]}; pass "
            f"filter(lambda p: p.requires_grad, {opt.target}.parameters()) instead",
            obj=opt.target,
        )
        break


def _check_freeze(ctx: _File, events: list[_Event], j: int, lines: dict[int, int]) -> None:
    f = events[j]
    if f.whole:
        heads = [
            (i, h)
            for i, h in enumerate(events[:j])
            if h.kind == "HEAD"
            and h.target != f.target
            and _within(h.target, f.target)
            and not _exclusive(h, f)
            and not _killed(events, i, j, h.target)
        ]
        for i, h in heads:
            later = events[j + 1 :]
            if any(
                (
                    u.kind == "UNFREEZE"
                    and (
                        _within(h.target, u.target)
                        or _within(u.target, h.target)
                        or u.target.startswith(f.target + ".*")
                    )
                )
                or (u.kind in ("KILL", "HEAD") and _within(h.target, u.target))
                for u in later
            ):
                continue
            ctx.report(
                HEAD_FROZEN,
                f.loop if f.loop is not None else f.node,
                f"this freezes every parameter of {f.target}, including the new "
                f"{h.target} assigned at line {lines[id(h.node)]}; freeze before assigning "
                f"the head, or unfreeze it afterwards with {h.target}.requires_grad_(True)",
                obj=h.target,
            )
            break
    for i in range(j - 1, -1, -1):
        w = events[i]
        if w.kind != "WRAP" or not _within(f.target, w.target) or _exclusive(w, f):
            continue
        if _killed(events, i, j, w.target) or _reverted(events, j, j):
            continue
        ctx.report(
            FREEZE_AFTER_DDP,
            f.node,
            f"{_show(f)} frozen after {w.target} was wrapped by {w.label} at line "
            f"{lines[id(w.node)]}, which fixes the set of trainable parameters at wrap time; "
            f"freeze before wrapping",
            obj=f.target,
        )
        break


def _check_train(ctx: _File, events: list[_Event], j: int, lines: dict[int, int]) -> None:
    t = events[j]
    for i in range(j - 1, -1, -1):
        e = events[i]
        if e.kind != "EVAL_SUB" or e.target == t.target or not _within(e.target, t.target):
            continue
        if _exclusive(e, t) or _killed(events, i, j, t.target, e.target):
            continue
        if any(
            (r.kind == "EVAL_SUB" and r.target == e.target and not _exclusive(r, t))
            or (r.kind == "REEVAL" and (_within(r.target, t.target) or _within(t.target, r.target)))
            for r in events[j + 1 :]
        ):
            continue
        sub = f"submodules of {e.target[:-2]}" if e.target.endswith(".*") else e.target
        ctx.report(
            TRAIN_UNDOES_EVAL,
            t.node,
            f"{t.target}.train() puts {sub} (set to eval at line {lines[id(e.node)]}) back in "
            f"train mode, so frozen norm layers update their running stats; call .eval() on "
            f"them again after {t.target}.train(), or use a freezedsl `freeze stats` rule",
            obj=t.target,
        )
        break


# ----------------------------------------------------------------------- entry points


def _split_lines(text: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", text)


def _parse_failure(path: str, text: str, exc: Exception) -> Diagnostic:
    """FZ002 at the parser's position (or at the NUL byte, which has none)."""
    nul = text.find("\x00")
    if nul >= 0 and (not isinstance(exc, SyntaxError) or "null" in str(exc.msg)):
        before = _split_lines(text[:nul])
        line, col = len(before), len(before[-1]) + 1
        message = "Python file contains a NUL byte, so it cannot be parsed"
    elif isinstance(exc, SyntaxError):
        line, col = exc.lineno or 1, max(exc.offset or 1, 1)
        message = f"Python syntax error: {exc.msg or 'invalid syntax'}"
    else:
        line, col = 1, 1
        message = f"Python file is nested too deeply to parse ({type(exc).__name__})"
    return diag(SYNTAX_ERROR, f"{message}; the file was not checked", path, line=line, col=col)


def check_source(path: str, text: str) -> list[Diagnostic]:
    """All FZ2xx findings for one file's text, sorted by (line, col, code); never raises.

    A file that does not parse gives a single FZ002 finding.
    """
    lines = _split_lines(text)
    ctx = _File(path, lines)
    try:
        with warnings.catch_warnings():  # invalid escapes etc. are not ours to print
            warnings.simplefilter("ignore")
            tree = ast.parse(text, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        return [_parse_failure(path, text, e)]
    if _TRIGGERS.search(text) is None:
        return []
    try:
        ctx.tree = tree
        _scan_imports(tree.body, ctx)
        ctx.pending.append(tree.body)
        while ctx.pending:
            scope = _Scope(ctx)
            scope.block(ctx.pending.pop())
            _check_scope(ctx, scope.events)
    except RecursionError:
        ctx.out.append(
            diag(
                SYNTAX_ERROR,
                "Python file is nested too deeply to check; the file was not checked",
                path,
                line=1,
                col=1,
            )
        )
    unique = {(d.line, d.col, d.code, d.message): d for d in ctx.out}
    return sorted(unique.values(), key=lambda d: (d.line or 0, d.col or 0, d.code, d.message))


def check_file(path: str) -> list[Diagnostic]:
    """Read ``path`` and check it. Honours a PEP 263 coding cookie or BOM; bytes that do not
    decode are replaced, so a mis-encoded file is still checked. ``OSError`` propagates."""
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        text = data.decode("utf-8", "replace")
    return check_source(path, text.removeprefix("\ufeff"))
