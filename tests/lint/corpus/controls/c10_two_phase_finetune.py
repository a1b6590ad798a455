# Control: two-phase fine-tuning: train the head, then unfreeze everything and build a
# new optimizer.
import torch


def finetune(model, train_epochs):
    model.backbone.requires_grad_(False)
    opt = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=1e-3)
    train_epochs(model, opt, 5)
    model.requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    train_epochs(model, opt, 10)
