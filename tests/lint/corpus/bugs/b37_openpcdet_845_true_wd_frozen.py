# Source: https://github.com/open-mmlab/OpenPCDet/issues/845
# The adam_onecycle wrapper applies decoupled weight decay to every parameter of every
# group before the step; frozen parameters decay too (the fix skips parameters with
# requires_grad False).
# Static: FZ215.
class OptimWrapper:
    def __init__(self, opt, wd, lr, true_wd=True):
        self.opt = opt
        self._wd = wd
        self._lr = lr
        self.true_wd = true_wd

    def step(self):
        if self.true_wd:
            for lr, wd, pg in zip(self._lr, self._wd, self.opt.param_groups):
                for p in pg["params"]:
                    p.data.mul_(1 - wd * lr)  # <- bug
        self.opt.step()
