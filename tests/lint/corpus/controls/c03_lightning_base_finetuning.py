# Control: gradual unfreezing with Lightning's BaseFinetuning callback.
import torch
from lightning.pytorch.callbacks import BaseFinetuning


class FeatureExtractorFreezeUnfreeze(BaseFinetuning):
    def __init__(self, unfreeze_at_epoch=10):
        super().__init__()
        self._unfreeze_at_epoch = unfreeze_at_epoch

    def freeze_before_training(self, pl_module):
        self.freeze(pl_module.feature_extractor)

    def finetune_function(self, pl_module, current_epoch, optimizer):
        if current_epoch == self._unfreeze_at_epoch:
            self.unfreeze_and_add_param_group(
                modules=pl_module.feature_extractor, optimizer=optimizer, train_bn=True
            )


def configure_optimizers(module):
    return torch.optim.Adam(filter(lambda p: p.requires_grad, module.parameters()), lr=1e-3)
