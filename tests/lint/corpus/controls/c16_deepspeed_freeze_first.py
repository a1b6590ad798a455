# Control: DeepSpeed with the vision tower frozen before deepspeed.initialize and only
# trainable parameters handed to the engine (LLaVA-style).
import deepspeed


def setup(args, model, ds_config):
    model.vision_tower.requires_grad_(False)
    for p in model.mm_projector.parameters():
        p.requires_grad = True
    params = [p for p in model.parameters() if p.requires_grad]
    engine, optimizer, _, _ = deepspeed.initialize(
        args=args, model=model, model_parameters=params, config=ds_config
    )
    return engine, optimizer
