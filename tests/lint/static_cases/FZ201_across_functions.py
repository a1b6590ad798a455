"""FZ201/FZ202 across functions: freezes made by helpers, lists and tuple loops."""

import torch


def set_requires_grad(nets, requires_grad=False):
    if not isinstance(nets, list):
        nets = [nets]
    for net in nets:
        if net is not None:
            for param in net.parameters():
                param.requires_grad = requires_grad


def flagged_helper(model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)  # expect: FZ201
    set_requires_grad([model.encoder, model.decoder], False)
    return opt


def flagged_tuple_loop(model):
    for m in (model.backbone, model.neck):
        m.requires_grad_(False)
    return torch.optim.SGD(model.parameters(), lr=0.1)  # expect: FZ202


# ---- correct twins: nothing below may be reported


def twin_gan_step(gen, disc, opt_g, opt_d):
    # CycleGAN: the discriminator is toggled every step, around the generator update
    opt = torch.optim.Adam(disc.parameters(), lr=2e-4)
    for _ in range(10):
        set_requires_grad(disc, False)
        opt_g.step()
        set_requires_grad(disc, True)
        opt.step()


def twin_helper_unfreezes(model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    set_requires_grad(model.encoder, True)
    return opt


def twin_tuple_loop_filtered(model):
    for m in (model.backbone, model.neck):
        m.requires_grad_(False)
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
