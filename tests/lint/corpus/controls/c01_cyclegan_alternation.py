# Control: GAN alternation as in CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix,
# models/cycle_gan_model.py): the discriminators are frozen for the generator step and
# unfrozen for their own step, every iteration.
import itertools

import torch


def set_requires_grad(nets, requires_grad=False):
    if not isinstance(nets, list):
        nets = [nets]
    for net in nets:
        if net is not None:
            for param in net.parameters():
                param.requires_grad = requires_grad


class CycleGANModel:
    def __init__(self, netG_A, netG_B, netD_A, netD_B):
        self.netG_A, self.netG_B, self.netD_A, self.netD_B = netG_A, netG_B, netD_A, netD_B
        self.optimizer_G = torch.optim.Adam(
            itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()), lr=2e-4
        )
        self.optimizer_D = torch.optim.Adam(
            itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()), lr=2e-4
        )

    def optimize_parameters(self, backward_G, backward_D):
        set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad()
        backward_G()
        self.optimizer_G.step()
        set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad()
        backward_D()
        self.optimizer_D.step()
