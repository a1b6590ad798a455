"""FZ214 correct twin in a file of its own: the file puts the frozen part in eval mode,
so no ``train()`` in it is reported (the check looks at the whole file)."""

import torchvision


def twin(model_name):
    model = torchvision.models.resnet50(weights=None)
    model.requires_grad_(False)
    model.fc.requires_grad_(True)
    model.train()
    model.layer1.eval()
    return model_name
