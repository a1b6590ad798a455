"""The FZ2xx rule texts (registered once, on import, for ``freezedsl rule`` and the docs).

Kept apart from the analysis so the docs generator and the registry see every static rule
without loading the walk.
"""

from __future__ import annotations

from freezedsl.lint.registry import Rule, Severity, register

SYNTAX_ERROR = register(
    Rule(
        code="FZ002",
        name="python-syntax-error",
        severity=Severity.ERROR,
        summary="A Python file could not be parsed, so none of its FZ2xx checks ran.",
        what="""\
Reports a Python file that ``ast.parse`` rejects (a syntax error, a NUL byte, or
nesting too deep for the parser), at the position the parser gives, and a file whose
PEP 263 coding declaration Python rejects (an unknown encoding, or one that contradicts
a UTF-8 BOM), on the declaration's line.
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
that toggles the discriminator) is not reported, nor one followed in the same function
by removing optimizer state (``opt.state.pop(p)``, ``del opt.state[p]``,
``opt.state.clear()``): a deliberate mid-training freeze that drops the momentum.
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
replaces that head. An empty ``nn.Sequential()``/``ModuleList()`` is no head, and inside a
class that freezes all of ``self`` only a head-named attribute (``self.fc``,
``self.classifier``, ``self.head``, ...) counts: a frozen perceptual-loss network or
teacher built in ``__init__`` is frozen on purpose.
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
``encoder``, ``head``, ``fc``, ``layer1``, ``model.layers[0]``, or an attribute that the
file only ever assigns a module (``self.outc = OutConv(...)`` with ``class OutConv(nn.Module)``
in the same file). Names that look like
parameters (``p``, ``param``, ``weight``, ``*.bias``, loop variables over
``parameters()`` or ``zip(a.parameters(), b.parameters())``, a name checked by
``isinstance(x, nn.Parameter)``) are never flagged.
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
literal list the test iterates over (inline, or a list bound to a name). Only tests that
decide training are reported: the test guards a ``requires_grad`` change, an
``eval()``/``train()`` call, a freeze helper, ``lr``/``weight_decay``/``params`` of an
optimizer or the parameters a comprehension selects. Names that are only read (logging,
weight init, hooks, ``assert``, ``test_*`` functions) are not reported, nor literals whose
final digits are no index (``adapter-0``, ``ia3``: only ``.1`` or a numbered word such as
``layer1``, ``blocks1``, ``stage3``, ``res5`` has siblings; ``conv2``, ``fc1``, ``bn1``
number too few layers to collide). Literals ending in
``.`` or in a letter are not reported.
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
        summary="Parameters are frozen after the model was wrapped in DDP, FSDP, Accelerate or DeepSpeed.",
        what="""\
Flags freezing (``requires_grad_(False)``, ``.requires_grad = False``,
``freezedsl.apply``, ``rules.apply``) of a model, or of anything reached through it, after the model
was wrapped earlier in the same scope by ``DistributedDataParallel``/``DDP``,
``FullyShardedDataParallel``/``FSDP``, ``fully_shard(model)``,
``accelerator.prepare(model, ...)`` (a receiver named like ``accelerator``) or
``deepspeed.initialize(model=model, ...)``. The original name and the names the call
returns (``model, opt = accelerator.prepare(model, opt)``, ``engine, opt, _, _ =
deepspeed.initialize(...)``) all count.
""",
        why="""\
DDP records which parameters require gradients when it is constructed and builds its
all-reduce buckets from that. Parameters frozen afterwards never get a gradient, so the
reducer waits for them ("Expected to have finished reduction in the prior iteration")
or, with ``find_unused_parameters=True``, pays for searching the graph every step. FSDP
flattens and shards parameters when it wraps them, so ``requires_grad`` has to be
settled before wrapping; changing it afterwards is not supported.
``accelerator.prepare`` wraps in DDP/FSDP/DeepSpeed as configured, and
``deepspeed.initialize`` partitions the trainable parameters (ZeRO) and builds the
optimizer from them when it is called.
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

UNFREEZE_ALL_AFTER_FREEZE = register(
    Rule(
        code="FZ210",
        name="unfreeze-all-after-freeze",
        severity=Severity.WARNING,
        summary="A selective freeze is undone at once by a loop that unfreezes every parameter.",
        what="""\
Flags an unconditional unfreeze of every parameter of ``M`` (``for p in M.parameters():
p.requires_grad = True``, ``M.requires_grad_(True)``, also through a helper of the file)
that follows a freeze of part of ``M`` in the same block, when nothing but other
``requires_grad`` bookkeeping (loops, conditions, comments) stands between the two: no
training, optimizer or call in between can have used the frozen state. Unfreezing under
a condition (``if epoch == 5:``) or in another branch is gradual unfreezing and is not
reported. The mirror of FZ203.
""",
        why="""\
The later loop re-enables gradients for the part that was just frozen, so the whole
model trains. The usual cause is a "make sure the head trains" loop that is written
over ``model.parameters()`` instead of ``model.head.parameters()``.
""",
        example="""\
for p in model.backbone.parameters():
    p.requires_grad = False
for p in model.parameters():
    p.requires_grad = True
""",
        use_instead="""\
for p in model.backbone.parameters():
    p.requires_grad = False
for p in model.head.parameters():
    p.requires_grad = True
""",
    )
)

ROOT_MODULE_SELECTED = register(
    Rule(
        code="FZ211",
        name="named-modules-root-selected",
        severity=Severity.WARNING,
        summary="A `named_modules()` loop changes `requires_grad` of the root module `''` too.",
        what="""\
In a loop ``for name, m in M.named_modules():``, flags ``m.requires_grad_(...)`` or a loop
over ``m.parameters()`` that sets ``requires_grad``, when the name test that guards it is
true for the empty name ``""`` of the root module: a negated test (``"backbone" not in
name``, ``not name.startswith("head")``) or the ``else`` of a positive one, or a positive
test that only skips with ``continue``. Loops that skip the root (``if not name:
continue``, ``if name and ...``), use ``parameters(recurse=False)``, or change every
module unconditionally are not reported.
""",
        why="""\
``named_modules()`` yields the model itself first, under the name ``""``. Every
substring test that excludes a part is true for ``""``, and ``requires_grad_`` or
``parameters()`` on the root recurse into the whole model: the part the test was meant
to spare is changed too, so the whole model is frozen (nothing trains) or unfrozen.
""",
        example="""\
for name, m in model.named_modules():
    if "head" not in name:
        m.requires_grad_(False)
""",
        use_instead="""\
for name, m in model.named_modules():
    if name and "head" not in name.split("."):
        m.requires_grad_(False)
""",
    )
)

NOTHING_TRAINABLE = register(
    Rule(
        code="FZ212",
        name="nothing-trainable",
        severity=Severity.ERROR,
        summary="An optimizer is built after every parameter it gets was frozen.",
        what="""\
Flags an optimizer whose every parameter source ``M.parameters()`` (filtered by
``requires_grad`` or not) lies within a module whose parameters were all frozen
unconditionally earlier in the same scope (``M.requires_grad_(False)``, ``for p in
M.parameters(): p.requires_grad = False``, also through a helper), with nothing
unfrozen, replaced or assigned as a new layer inside it in between.
""",
        why="""\
Nothing is left to train. With a ``requires_grad`` filter the optimizer raises
"optimizer got an empty parameter list"; without one, ``backward()`` fails with
"element 0 of tensors does not require grad", or the run trains nothing at all. The
usual cause is freezing the whole model, head included, before building the optimizer.
""",
        example="""\
for p in model.parameters():
    p.requires_grad = False
opt = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1)
""",
        use_instead="""\
for p in model.parameters():
    p.requires_grad = False
for p in model.fc.parameters():
    p.requires_grad = True
opt = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1)
""",
    )
)

UPDATE_IGNORES_FROZEN = register(
    Rule(
        code="FZ213",
        name="manual-update-ignores-requires-grad",
        severity=Severity.WARNING,
        summary="A hand-written update or weight decay changes every parameter, frozen ones too.",
        what="""\
Flags a loop ``for p in M.parameters()`` (or ``named_parameters()``) that changes ``p``
in place (``p.data.mul_(...)``, ``p.add_(...)``, ``p.data -= ...``, ``p.data = <arithmetic>``,
``p.grad.div_(...)``) with no test of ``p.requires_grad`` or ``p.grad``, when part of ``M``
was frozen earlier in the same scope (also through a helper) and not unfrozen again.
Loops over ``zip(...)`` of two models (EMA/momentum teachers) are not reported.
""",
        why="""\
``requires_grad`` only stops gradients. A manual SGD step, a decoupled weight decay or a
weight clamp applied to every parameter moves the frozen ones as well (weight decay
shrinks them towards zero step after step), or fails on their ``grad`` of ``None``.
""",
        example="""\
model.backbone.requires_grad_(False)
with torch.no_grad():
    for p in model.parameters():
        p.mul_(1 - lr * wd)
""",
        use_instead="""\
model.backbone.requires_grad_(False)
with torch.no_grad():
    for p in model.parameters():
        if p.requires_grad:
            p.mul_(1 - lr * wd)
""",
    )
)

FROZEN_NORM_TRAINING = register(
    Rule(
        code="FZ214",
        name="frozen-norm-in-train-mode",
        severity=Severity.WARNING,
        summary="A frozen part with BatchNorm is put in train mode and nothing sets it to eval.",
        what="""\
Flags ``M.train()`` when earlier in the same scope parameters of ``M`` or of a part of
``M`` were frozen (and not unfrozen again), the file shows BatchNorm layers
(``BatchNorm``, or a ResNet/ResNeXt/RegNet/MobileNet/EfficientNet/DenseNet/Inception
/``vgg*_bn``/YOLO model) and nothing in the file puts a part of a model in eval mode:
no ``.eval()`` on anything but the receivers of ``.train()`` (``model.eval()`` for
validation is fine), no ``model.apply(...)``, and no ``norm_eval``, ``freeze_bn``,
``track_running_stats`` or ``momentum=0``.
""",
        why="""\
``requires_grad = False`` stops gradients, not BatchNorm: in train mode a BatchNorm
layer normalises with the batch statistics and overwrites its running mean and variance
on every forward pass. The frozen backbone drifts away from its pretrained statistics,
and evaluation (which uses them) gets worse while the "frozen" weights look unchanged.
""",
        example="""\
model = torchvision.models.resnet50(weights=None)
for p in model.parameters():
    p.requires_grad = False
model.fc = nn.Linear(2048, 10)
model.train()
""",
        use_instead="""\
model = torchvision.models.resnet50(weights=None)
for p in model.parameters():
    p.requires_grad = False
model.fc = nn.Linear(2048, 10)
model.train()
for m in model.modules():
    if isinstance(m, nn.BatchNorm2d) and not m.weight.requires_grad:
        m.eval()  # or: a freezedsl `freeze stats` rule
""",
    )
)

OPT_LOOP_IGNORES_NO_GRAD = register(
    Rule(
        code="FZ215",
        name="param-group-loop-ignores-missing-grad",
        severity=Severity.WARNING,
        summary="A loop over an optimizer's param group updates `p` or reads `p.grad` "
        "before testing whether `p` has a gradient.",
        what="""\
In a loop ``for p in group["params"]`` where ``group`` comes from ``X.param_groups``
(also through ``enumerate``/``zip``, or ``X.param_groups[i]["params"]``), as in custom
optimizers and optimizer wrappers, flags the first statement that changes ``p`` in
place (``p.mul_(...)``, ``p.data.add_(...)``, ``p.data -= ...``) or dereferences
``p.grad`` (``p.grad.data``, ``p.grad.norm()``, ``p.grad[...]``, also through
``grad = p.grad``) before any test of ``p.grad`` or ``p.requires_grad`` in the loop
(``if p.grad is None: continue``, ``if grad is not None``, ``if p.requires_grad``).
Statements after such a test are taken as guarded.
""",
        why="""\
An optimizer gets frozen parameters too (``model.parameters()`` is the common argument),
and their ``.grad`` stays ``None``. Stock ``torch.optim`` optimizers skip them; a step that
applies weight decay first moves the frozen weights anyway (decay shrinks them step after
step), and one that reads ``p.grad.data`` crashes with ``'NoneType' object has no
attribute 'data'`` as soon as anything is frozen.
""",
        example="""\
class MyOpt(torch.optim.Optimizer):
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.mul_(1 - group["lr"] * group["weight_decay"])
                if p.grad is None:
                    continue
                p.add_(p.grad, alpha=-group["lr"])
""",
        use_instead="""\
class MyOpt(torch.optim.Optimizer):
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(p.grad, alpha=-group["lr"])
""",
    )
)

GUARDED_BY_OWN_FLAG = register(
    Rule(
        code="FZ216",
        name="requires-grad-guarded-by-itself",
        severity=Severity.WARNING,
        summary="`if p.requires_grad: p.requires_grad = flag` can only freeze, never unfreeze.",
        what="""\
Flags ``X.requires_grad = v`` or ``X.requires_grad_(v)`` inside ``if X.requires_grad:``
(or ``if X.requires_grad and ...:``) when ``v`` is not the constant ``False``, and inside
``if not X.requires_grad:`` when ``v`` is not the constant ``True``: the test reads the
very flag the statement changes.
""",
        why="""\
Under ``if p.requires_grad:`` the statement only ever runs for trainable parameters, so
``set_trainable(True)`` after ``set_trainable(False)`` finds nothing to change: the model
stays frozen and the second training phase trains nothing (or fails with "does not
require grad"). The mirror image can never freeze anything.
""",
        example="""\
def set_trainable(model, trainable):
    for p in model.parameters():
        if p.requires_grad:
            p.requires_grad = trainable
""",
        use_instead="""\
def set_trainable(model, trainable):
    for p in model.parameters():
        p.requires_grad = trainable
""",
    )
)

GRAD_MASK_WITH_DECAY = register(
    Rule(
        code="FZ217",
        name="zeroed-grad-with-weight-decay",
        severity=Severity.WARNING,
        summary="Part of a gradient is zeroed to keep it fixed, but the optimizer's weight "
        "decay still moves it.",
        what="""\
In a function that builds an optimizer with weight decay (``AdamW``, whose default is
0.01, unless ``weight_decay=0``; any optimizer given a ``weight_decay`` other than the
constant 0), flags the first statement that zeroes part of a gradient:
``W.grad[idx] = 0``, ``W.grad.data[idx, :] = ....fill_(0)``, ``W.grad[idx].zero_()``, also
through a name bound to ``W.grad``.
""",
        why="""\
Zeroing gradient rows (to train only a new token embedding, or a few channels) keeps
plain SGD from moving them, but decoupled weight decay is applied to the whole tensor
whatever its gradient: every "frozen" row shrinks towards zero at each step. Restore the
rows after ``optimizer.step()``, or keep the trainable part in a tensor of its own.
""",
        example="""\
def train(emb, loader, new_id):
    opt = torch.optim.AdamW(emb.parameters(), lr=1e-3)
    for batch in loader:
        emb(batch).sum().backward()
        keep = torch.arange(emb.num_embeddings) != new_id
        emb.weight.grad[keep] = 0
        opt.step()
        opt.zero_grad()
""",
        use_instead="""\
def train(emb, loader, new_id):
    opt = torch.optim.AdamW(emb.parameters(), lr=1e-3)
    original = emb.weight.detach().clone()
    for batch in loader:
        emb(batch).sum().backward()
        keep = torch.arange(emb.num_embeddings) != new_id
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            emb.weight[keep] = original[keep]
""",
    )
)

UNFREEZE_MISSED_BY_OPTIMIZER = register(
    Rule(
        code="FZ218",
        name="unfreeze-after-filtered-optimizer",
        severity=Severity.WARNING,
        summary="Parameters are unfrozen after the optimizer was built from the trainable "
        "ones only, and that optimizer is used on.",
        what="""\
Flags an unfreeze (``requires_grad_(True)``, ``p.requires_grad = True`` in a loop over
``M.part.parameters()``, also through a helper) of a part that was frozen when an
optimizer was built earlier in the same scope from the parameters that require grad
(``filter(lambda p: p.requires_grad, M.parameters())`` or a comprehension with
``if p.requires_grad``), when that optimizer's variable is read after the unfreeze and
nothing builds a new optimizer over the part afterwards. Files that call
``add_param_group`` anywhere are not reported.
""",
        why="""\
A filtered optimizer holds the parameters that were trainable when it was built. Setting
``requires_grad = True`` later gives them gradients, but no param group contains them,
so ``step()`` never updates them: the "unfrozen" layers stay exactly as they were while
the run looks like fine-tuning.
""",
        example="""\
def finetune(model, train_epochs):
    model.requires_grad_(False)
    model.fc = nn.Linear(512, 10)
    opt = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()))
    train_epochs(model, opt, 3)
    model.layer4.requires_grad_(True)
    train_epochs(model, opt, 3)
""",
        use_instead="""\
def finetune(model, train_epochs):
    model.requires_grad_(False)
    model.fc = nn.Linear(512, 10)
    opt = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()))
    train_epochs(model, opt, 3)
    model.layer4.requires_grad_(True)
    opt = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()))
    train_epochs(model, opt, 3)
""",
    )
)
