# Source: https://github.com/Tiiiger/QPyTorch/issues/40
# optim_low quantises every parameter's gradient; a frozen layer (grad None) breaks it.
# Static: FZ215.
class OptimLP:
    def __init__(self, optim, grad_quant):
        self.optim = optim
        self.grad_quant = grad_quant

    def step(self):
        for group in self.optim.param_groups:
            for p in group["params"]:
                p.grad.data = self.grad_quant(p.grad.data)  # <- bug
        self.optim.step()
