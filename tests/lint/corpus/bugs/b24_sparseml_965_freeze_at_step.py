# Source: https://github.com/neuralmagic/sparseml/issues/965
# The modifier sets requires_grad=False inside optimizer.step(), after backward() has
# already produced gradients; the parameters are updated anyway.
# Static: not reported (the freeze happens inside a library hook at run time).
class TrainableParamsModifier:
    def __init__(self, params):
        self.params = params

    def update(self, module, optimizer, epoch):
        for param in self.params:
            param.requires_grad = False  # <- bug
