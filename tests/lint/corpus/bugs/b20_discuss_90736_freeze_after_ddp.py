# Source: https://discuss.pytorch.org/t/how-does-distributeddataparallel-handle-parameters-whose-requires-grad-flag-is-false/90736
# Layers are frozen during training after the DDP constructor; DDP built its buckets
# from requires_grad at construction, so the change is not honoured.
from torch.nn.parallel import DistributedDataParallel as DDP


def train(model, rank, epochs, run_epoch):
    model = DDP(model, device_ids=[rank])
    for epoch in range(epochs):
        if epoch == 5:
            for p in model.module.encoder.parameters():
                p.requires_grad = False  # <- bug
        run_epoch(model)
