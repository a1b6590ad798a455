# Control: PEFT-style adapters: only LoRA weights train (peft's mark_only_lora_as_trainable).
import torch


def mark_only_lora_as_trainable(model, bias="none"):
    for n, p in model.named_parameters():
        if "lora_" not in n:
            p.requires_grad = False
    if bias == "all":
        for n, p in model.named_parameters():
            if "bias" in n:
                p.requires_grad = True


def setup(model, adapter_name="adapter-0"):
    mark_only_lora_as_trainable(model)
    for name, module in model.named_modules():
        if adapter_name in name or "ia3" in name:
            print(name, type(module).__name__)
    return torch.optim.AdamW((p for p in model.parameters() if p.requires_grad), lr=1e-4)
