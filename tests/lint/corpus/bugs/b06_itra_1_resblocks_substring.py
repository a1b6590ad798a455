# Source: https://github.com/ChenDelong1999/ITRA/issues/1
# Locking text layers by substring: 'resblocks.1' also matches resblocks.10 and .11.
def lock_text_partial(text_backbone, unlocked):
    for name, param in text_backbone.named_parameters():
        if any(x in name for x in ["resblocks.1", "resblocks.2"]):  # <- bug
            param.requires_grad = False
    return unlocked
