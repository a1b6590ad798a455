# Source: https://github.com/TRI-ML/sdflabel/pull/8
# The backbone's BN is frozen once with eval(); training calls model.train() later
# without re-freezing (the PR overrides train() to fix it).
def train(model, loader, optimizer, epochs, loss_fn):
    model.backbone.eval()
    for _ in range(epochs):
        model.train()  # <- bug
        for batch in loader:
            optimizer.zero_grad()
            loss_fn(model, batch).backward()
            optimizer.step()
