# Source: https://github.com/iamwangyabin/S-Prompts/pull/2
# The prompt pool of earlier tasks is frozen, but the optimizer (with weight decay) gets
# every parameter of the network, so the frozen prompts still shrink.
import torch


class Learner:
    def train_task(self, task):
        for name, param in self._network.named_parameters():
            param.requires_grad_(False)
            if (
                "classifier_pool" + "." + str(task) in name
                or "prompt_pool" + "." + str(task) in name
            ):
                param.requires_grad_(True)
        optimizer = torch.optim.SGD(  # <- bug
            self._network.parameters(), momentum=0.9, lr=0.01, weight_decay=0.0005
        )
        return optimizer
