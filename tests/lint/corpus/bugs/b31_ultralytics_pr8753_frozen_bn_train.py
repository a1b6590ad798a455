# Source: https://github.com/ultralytics/ultralytics/pull/8753
# Frozen layers keep their BatchNorm in train mode, so running_mean/var change although
# the layers are "frozen" (the PR puts their BN in eval mode).
# Static: not reported (FZ214 needs BatchNorm evidence in the file; this one shows none).
def setup_train(model, freeze_layer_names, train_epoch, epochs):
    for k, v in model.named_parameters():
        if any(x in k for x in freeze_layer_names):
            v.requires_grad = False
    for _ in range(epochs):
        model.train()  # <- bug
        train_epoch(model)
