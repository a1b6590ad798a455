"""FZ206 substring-name-match. Lines with an ``expect`` comment must be reported there."""


def flagged(model):
    for name, p in model.named_parameters():
        if "layer1" in name:  # expect: FZ206:12
            p.requires_grad = False
        if name.startswith("blocks.1"):  # expect: FZ206:28
            p.requires_grad = False
        if "conv2" not in name:  # conv1..conv5: too few siblings to collide
            continue
    return [
        p
        for n, p in model.named_parameters()
        if n.startswith(("layer3", "fc."))  # expect: FZ206
    ]


def flagged_state_dict(model, opt):
    for k, v in model.state_dict().items():
        if k.find("downsample.0") != -1:  # expect: FZ206
            v.requires_grad_(False)
    for key in model.state_dict():
        if key.index("layer4") == 0:  # expect: FZ206
            opt.param_groups[0]["lr"] = 0.0


FREEZE = ["model.1", "model.2."]  # expect: FZ206


def flagged_named_list(model):
    for k, v in model.named_parameters():
        if any(x in k for x in FREEZE):
            v.requires_grad = False
    freeze = ["blocks.0.", "blocks.1"]  # expect: FZ206
    for k, v in model.named_parameters():
        v.requires_grad = not any(k.startswith(x) for x in freeze)


def flagged_literal_list(model):
    for name, module in model.named_modules():
        if any(s in name for s in ("layer1", "bn")):  # expect: FZ206:36
            module.eval()
    for i, (name, p) in enumerate(model.named_parameters()):
        for prefix in ["stage2", "head."]:  # expect: FZ206:24
            if name.startswith(prefix):
                p.requires_grad = i > 3


# ---- correct twins: nothing below may be reported


def twin(model):
    for name, p in model.named_parameters():
        if name.startswith("layer1."):
            p.requires_grad = False
        if "bias" in name or "bn" in name or ".1." in name:
            p.requires_grad = False
        if name.split(".")[0] == "layer1" or "layer1" in name.split("."):
            p.requires_grad = False
        if name == "layer1":
            p.requires_grad = False
    for key in ["layer1", "layer2"]:
        print("layer1" in key)
    names = ["layer1", "layer10"]
    print("layer1" in names)


def twin_names_only_read(model, log):
    # reading names decides nothing: logging, weight init, hooks, test assertions
    for k, v in model.state_dict().items():
        if k.find("downsample.0") != -1:
            print(k, v.shape)
    for name, m in model.named_modules():
        if "layer1" in name:
            m.register_forward_hook(log)
    for name, p in model.named_parameters():
        if name.startswith("blocks.1"):
            p.data.normal_(0, 0.02)


def test_frozen(model):
    for name, p in model.named_parameters():
        if "layer1" in name:
            assert not p.requires_grad


def twin_no_sibling_index(model):
    # user-chosen names, not positions in a sequence: no colliding sibling
    for name, p in model.named_parameters():
        if "adapter-0" in name or "ia3" in name or "lora_A" in name:
            p.requires_grad = True
