# Source: https://github.com/jina-ai/finetuner/issues/435
# freeze=True froze every layer of the embedding model, head included: backward fails
# with "element 0 of tensors does not require grad".
import torch


def to_embedding_model(model, freeze=True):
    if freeze:
        for param in model.parameters():
            param.requires_grad = False
    return model


def fit(model):
    model = to_embedding_model(model, freeze=True)
    return torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()))  # <- bug
