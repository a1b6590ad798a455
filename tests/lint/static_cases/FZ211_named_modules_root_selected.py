"""FZ211 named-modules-root-selected. Lines with an ``expect`` comment must be reported there."""


def flagged_negated(model):
    for name, m in model.named_modules():
        if "head" not in name:
            m.requires_grad_(False)  # expect: FZ211:13


def flagged_params_loop(model):
    for name, module in model.named_modules():
        if not name.startswith("backbone"):
            for p in module.parameters():  # expect: FZ211
                p.requires_grad = True


def flagged_continue(model):
    for name, m in model.named_modules():
        if any(k in name for k in ["classifier", "fc"]):
            continue
        m.requires_grad_(False)  # expect: FZ211


# ---- correct twins: nothing below may be reported


def twin_skip_root(model):
    for name, m in model.named_modules():
        if not name:
            continue
        if "head" not in name:
            m.requires_grad_(False)


def twin_name_and(model):
    for name, m in model.named_modules():
        if name and "head" not in name:
            m.requires_grad_(False)


def twin_positive(model):
    for name, m in model.named_modules():
        if "backbone" in name:
            m.requires_grad_(False)


def twin_own_params(model):
    for name, m in model.named_modules():
        if "head" not in name:
            for p in m.parameters(recurse=False):
                p.requires_grad = False


def twin_eval(model):
    for name, m in model.named_modules():
        if "head" not in name:
            m.eval()
