# Control: freezing by named_modules() with the root module skipped.
def freeze_all_but_head(model):
    for name, module in model.named_modules():
        if not name:
            continue
        if "head" not in name.split("."):
            for p in module.parameters(recurse=False):
                p.requires_grad = False
