# Source: https://discuss.pytorch.org/t/requires-grad-doesnt-propagate-to-the-parameters-of-the-module/9979
# Setting requires_grad on a module does not propagate to its parameters.
import torchvision


def build():
    model = torchvision.models.resnet18(weights=None)
    model.layer1.requires_grad = False  # <- bug
    return model
