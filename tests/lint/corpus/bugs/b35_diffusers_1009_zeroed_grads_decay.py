# Source: https://github.com/huggingface/diffusers/issues/1009
# Textual inversion "freezes" every token embedding but the new one by zeroing their
# gradients; AdamW's weight decay still shrinks them every step.
# Static: FZ217.
import torch


def train(text_encoder, tokenizer, placeholder_token_id, loader, lr, weight_decay):
    optimizer = torch.optim.AdamW(
        text_encoder.get_input_embeddings().parameters(), lr=lr, weight_decay=weight_decay
    )
    for batch in loader:
        loss = text_encoder(batch).loss
        loss.backward()
        grads = text_encoder.get_input_embeddings().weight.grad
        index_grads_to_zero = torch.arange(len(tokenizer)) != placeholder_token_id
        grads.data[index_grads_to_zero, :] = grads.data[index_grads_to_zero, :].fill_(0)  # <- bug
        optimizer.step()
        optimizer.zero_grad()
