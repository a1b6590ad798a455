# Source: https://github.com/SvenBecker/vscode-pytorch/issues/8
# The editor snippet for freezing uses `require_grad`; PyTorch does not complain and
# every parameter stays trainable.
def freeze(model):
    for param in model.parameters():
        param.require_grad = False  # <- bug
