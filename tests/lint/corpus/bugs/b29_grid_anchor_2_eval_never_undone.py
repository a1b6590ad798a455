# Source: https://github.com/HuiZeng/Grid-Anchor-based-Image-Cropping-Pytorch/issues/2
# test() calls net.eval() and training never calls net.train() again, so BatchNorm is
# frozen from the second epoch on without anyone deciding so.
# Static: not reported.
def train(net, loader, optimizer, epochs, test, step):
    for _ in range(epochs):
        for batch in loader:
            step(net, optimizer, batch)
        test(net)


def test(net, loader, evaluate):
    net.eval()  # <- bug
    return evaluate(net, loader)
