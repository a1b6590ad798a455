# Source: https://github.com/ContinualAI/avalanche/pull/772
# A plugin puts the BatchNorm layers of the model in eval mode to freeze their
# statistics; the strategy's periodic evaluation ends with self.model.train(), which
# puts them back in train mode, so the running statistics keep changing.
# Static: FZ208 (on this line, in the method that train() runs).
from torch import nn


class Strategy:
    def __init__(self, model, train_epochs):
        self.model = model
        self.train_epochs = train_epochs

    def model_adaptation(self):
        for m in self.model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()

    def training_epoch(self):
        pass

    def eval(self, exp):
        self.model.eval()

    def _periodic_eval(self, eval_streams):
        for exp in eval_streams:
            self.eval(exp)
        self.model.train()  # <- bug

    def train(self, eval_streams):
        self.model.train()
        self.model_adaptation()
        for epoch in range(self.train_epochs):
            self.epoch = epoch
            self.training_epoch()
            self._periodic_eval(eval_streams)
