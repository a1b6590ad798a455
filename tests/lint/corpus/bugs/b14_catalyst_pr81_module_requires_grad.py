# Source: https://github.com/catalyst-team/catalyst/pull/81
# "frozen=True" set requires_grad on the module object, so the model stayed trainable;
# the fix loops over the module's parameters.
def prepare(encoder, frozen):
    if frozen:
        encoder.requires_grad = False  # <- bug
    return encoder
