# Source: https://github.com/udacity/deep-learning-v2-pytorch/issues/12
# Transfer-learning solution freezes with a misspelt attribute: nothing is frozen.
def freeze_features(vgg16):
    for param in vgg16.features.parameters():
        param.require_grad = False  # <- bug
