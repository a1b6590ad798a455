# Control: Accelerate with the text encoder frozen before prepare (diffusers-style).
import torch
from accelerate import Accelerator


def main(unet, text_encoder, vae, loader):
    accelerator = Accelerator()
    vae.requires_grad_(False)
    text_encoder.requires_grad_(False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-5)
    unet, optimizer, loader = accelerator.prepare(unet, optimizer, loader)
    return unet, optimizer, loader
