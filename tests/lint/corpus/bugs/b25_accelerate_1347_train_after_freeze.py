# Source: https://github.com/huggingface/accelerate/issues/1347
# Part of the model is frozen; calling model.train() before the loop lets the frozen
# part's BatchNorm statistics drift, and validation accuracy drops.
# Static: not reported (FZ214 needs BatchNorm evidence in the file; this one shows none).
from accelerate import Accelerator


def main(model, optimizer, loader, step):
    accelerator = Accelerator(mixed_precision="fp16")
    for param in model.backbone.parameters():
        param.requires_grad = False
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.train()  # <- bug
    for batch in loader:
        step(model, optimizer, batch)
