"""FZ217 zeroed-grad-with-weight-decay. Lines with an ``expect`` comment must be reported
there."""

import torch


def textual_inversion(text_encoder, tokenizer, token_id, loader, lr, wd):
    opt = torch.optim.AdamW(text_encoder.get_input_embeddings().parameters(), lr=lr, weight_decay=wd)
    for batch in loader:
        text_encoder(batch).loss.backward()
        grads = text_encoder.get_input_embeddings().weight.grad
        keep = torch.arange(len(tokenizer)) != token_id
        grads.data[keep, :] = grads.data[keep, :].fill_(0)  # expect: FZ217:9
        opt.step()
        opt.zero_grad()


def default_decay(emb, loader, new_id):
    opt = torch.optim.AdamW(emb.parameters(), lr=1e-3)
    for batch in loader:
        emb(batch).sum().backward()
        emb.weight.grad[:new_id].zero_()  # expect: FZ217:9
        opt.step()


def sgd_decay(emb, loader, mask):
    opt = torch.optim.SGD(emb.parameters(), lr=0.1, weight_decay=1e-4)
    for batch in loader:
        emb(batch).sum().backward()
        emb.weight.grad[mask] = 0  # expect: FZ217:9
        opt.step()


# ---- correct twins: nothing below may be reported


def no_decay(emb, loader, mask):
    opt = torch.optim.AdamW(emb.parameters(), lr=1e-3, weight_decay=0.0)
    for batch in loader:
        emb(batch).sum().backward()
        emb.weight.grad[mask] = 0
        opt.step()


def plain_sgd(emb, loader, mask):
    opt = torch.optim.SGD(emb.parameters(), lr=0.1)
    for batch in loader:
        emb(batch).sum().backward()
        emb.weight.grad[mask] = 0
        opt.step()


def restore_rows(emb, loader, new_id):
    opt = torch.optim.AdamW(emb.parameters(), lr=1e-3)
    original = emb.weight.detach().clone()
    for batch in loader:
        emb(batch).sum().backward()
        opt.step()
        with torch.no_grad():
            emb.weight[:new_id] = original[:new_id]


def zero_whole_grad(model, loader):
    opt = torch.optim.AdamW(model.parameters())
    for p in model.parameters():
        p.grad = None
    return opt
