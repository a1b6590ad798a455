# Source: https://theneuralbase.com/pytorch/learn/intermediate/freezing-base-model-weights/
# layer4 is unfrozen mid-training, but the optimizer was built from the trainable
# parameters only, so layer4 never trains.
# Static: FZ218.
import torch


def finetune(model, train_epochs):
    for param in model.parameters():
        param.requires_grad = False
    model.fc = torch.nn.Linear(model.fc.in_features, 10)
    optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=1e-3)
    train_epochs(model, optimizer, 3)
    for param in model.layer4.parameters():  # <- bug
        param.requires_grad = True
    train_epochs(model, optimizer, 3)
