# Source: https://boxofcuriosities.co.uk/post/how-can-requires-grad-be-true-immediately-after-i-set-it-to
# requires_grad is switched off inside the training loop, after the optimizer was built
# over all parameters; the weight keeps being updated.
import torch


def train(dataloader, loss_function, target):
    model = torch.nn.Linear(10, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)  # <- bug
    for _epoch in range(10):
        for data in dataloader:
            model.weight.requires_grad = False
            optimizer.zero_grad()
            loss = loss_function(model(data), target)
            loss.backward()
            optimizer.step()
