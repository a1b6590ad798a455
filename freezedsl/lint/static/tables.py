"""Name tables the static checks match against (optimizers, wrappers, module-like names).

Plain data and regular expressions; no analysis here.
"""

from __future__ import annotations

import re

_OPTIMIZERS = frozenset(
    re.findall(
        r"\w+",
        """SGD Adam AdamW Adamax Adagrad Adadelta RMSprop Rprop ASGD NAdam RAdam LBFGS
        SparseAdam Adafactor Muon Lion LAMB Lamb LARS Adan AdaBelief Novograd AdamP SGDP
        AdamW8bit Adam8bit PagedAdamW PagedAdamW8bit SGD8bit FusedAdam FusedLAMB
        DeepSpeedCPUAdam""",
    )
)
_WRAPPERS = frozenset(
    ("DistributedDataParallel", "DDP", "FullyShardedDataParallel", "FSDP", "fully_shard")
)
# Methods whose receiver is certainly an nn.Module (optimizers have state_dict too).
_MODULE_METHODS = frozenset(
    ("parameters", "named_parameters", "modules", "named_modules", "children", "named_children")
)
_PARAM_LIKE = re.compile(
    r"^(p|param|params|parameter|parameters|w|b|weight|bias|weights|tensor|t|x)$"
    r"|(_|^)(weight|bias|param|token|embed|embedding|scale|gamma|beta|alpha|mask)s?$",
    re.IGNORECASE,
)
_MODULE_WORD = re.compile(
    r"^(?:\w+_)?(?:model|net|network|module|backbone|encoder|decoder|head|heads|classifier"
    r"|features|stem|neck|trunk|layers|blocks|teacher|student|generator|discriminator"
    r"|transformer|unet|vae)$"
    r"|^(?:fc|layer|conv|bn|block|norm)\d*$",
    re.IGNORECASE,
)
# A bare variable needs a stronger name: ``features`` or ``head`` alone may be a tensor.
_BARE_MODULE_WORD = re.compile(
    r"^(?:\w+_)?(?:model|net|network|module|backbone|encoder|decoder|classifier|teacher"
    r"|student|generator|discriminator|transformer|unet|vae)$",
    re.IGNORECASE,
)
# Attribute names a classification/detection head commonly lives under.
_HEAD_WORD = re.compile(
    r"^(?:fc|classifier|head|heads|lm_head|last_linear|output|out|cls|score|final|linear"
    r"|logits|proj|projection|predictor|box_predictor|mask_predictor|aux_classifier)$"
)
# nn classes without parameters: freezing them freezes nothing, so no FZ203.
_PARAMLESS = re.compile(
    r"^(?:Identity|Flatten|Unflatten|Dropout\w*|AlphaDropout|\w*Pool\d?d|ReLU6?|GELU|SiLU"
    r"|Tanh|Sigmoid|Softmax\w*|LogSoftmax|Hardswish|Hardsigmoid|Mish|ELU|SELU|CELU"
    r"|LeakyReLU|Upsample|PixelShuffle|ZeroPad\d?d|ConstantPad\d?d)$"
)
# Helpers whose name says they put norm layers (back) in eval mode.
_REEVAL_HELPER = re.compile(r"freeze|eval|fix_bn|bn_|_bn|batchnorm|norm_stats", re.IGNORECASE)
_NAME_SOURCES = frozenset(("named_parameters", "named_modules", "named_children", "named_buffers"))

# torchvision builder -> stem of its weight enum (``<stem>_Weights``), torchvision 0.29.
_TV_STEMS: dict[str, str] = dict(
    re.findall(
        r"(\w+):(\w+)",
        """
alexnet:AlexNet convnext_base:ConvNeXt_Base convnext_large:ConvNeXt_Large
convnext_small:ConvNeXt_Small convnext_tiny:ConvNeXt_Tiny
deeplabv3_mobilenet_v3_large:DeepLabV3_MobileNet_V3_Large
deeplabv3_resnet101:DeepLabV3_ResNet101 deeplabv3_resnet50:DeepLabV3_ResNet50
densenet121:DenseNet121 densenet161:DenseNet161 densenet169:DenseNet169
densenet201:DenseNet201 efficientnet_b0:EfficientNet_B0 efficientnet_b1:EfficientNet_B1
efficientnet_b2:EfficientNet_B2 efficientnet_b3:EfficientNet_B3
efficientnet_b4:EfficientNet_B4 efficientnet_b5:EfficientNet_B5
efficientnet_b6:EfficientNet_B6 efficientnet_b7:EfficientNet_B7
efficientnet_v2_l:EfficientNet_V2_L efficientnet_v2_m:EfficientNet_V2_M
efficientnet_v2_s:EfficientNet_V2_S
fasterrcnn_mobilenet_v3_large_320_fpn:FasterRCNN_MobileNet_V3_Large_320_FPN
fasterrcnn_mobilenet_v3_large_fpn:FasterRCNN_MobileNet_V3_Large_FPN
fasterrcnn_resnet50_fpn:FasterRCNN_ResNet50_FPN
fasterrcnn_resnet50_fpn_v2:FasterRCNN_ResNet50_FPN_V2 fcn_resnet101:FCN_ResNet101
fcn_resnet50:FCN_ResNet50 fcos_resnet50_fpn:FCOS_ResNet50_FPN googlenet:GoogLeNet
inception_v3:Inception_V3 keypointrcnn_resnet50_fpn:KeypointRCNN_ResNet50_FPN
lraspp_mobilenet_v3_large:LRASPP_MobileNet_V3_Large
maskrcnn_resnet50_fpn:MaskRCNN_ResNet50_FPN maskrcnn_resnet50_fpn_v2:MaskRCNN_ResNet50_FPN_V2
maxvit_t:MaxVit_T mc3_18:MC3_18 mnasnet0_5:MNASNet0_5 mnasnet0_75:MNASNet0_75
mnasnet1_0:MNASNet1_0 mnasnet1_3:MNASNet1_3 mobilenet_v2:MobileNet_V2
mobilenet_v3_large:MobileNet_V3_Large mobilenet_v3_small:MobileNet_V3_Small
mvit_v1_b:MViT_V1_B mvit_v2_s:MViT_V2_S r2plus1d_18:R2Plus1D_18 r3d_18:R3D_18
raft_large:Raft_Large raft_small:Raft_Small regnet_x_16gf:RegNet_X_16GF
regnet_x_1_6gf:RegNet_X_1_6GF regnet_x_32gf:RegNet_X_32GF regnet_x_3_2gf:RegNet_X_3_2GF
regnet_x_400mf:RegNet_X_400MF regnet_x_800mf:RegNet_X_800MF regnet_x_8gf:RegNet_X_8GF
regnet_y_128gf:RegNet_Y_128GF regnet_y_16gf:RegNet_Y_16GF regnet_y_1_6gf:RegNet_Y_1_6GF
regnet_y_32gf:RegNet_Y_32GF regnet_y_3_2gf:RegNet_Y_3_2GF regnet_y_400mf:RegNet_Y_400MF
regnet_y_800mf:RegNet_Y_800MF regnet_y_8gf:RegNet_Y_8GF resnet101:ResNet101
resnet152:ResNet152 resnet18:ResNet18 resnet34:ResNet34 resnet50:ResNet50
resnext101_32x8d:ResNeXt101_32X8D resnext101_64x4d:ResNeXt101_64X4D
resnext50_32x4d:ResNeXt50_32X4D retinanet_resnet50_fpn:RetinaNet_ResNet50_FPN
retinanet_resnet50_fpn_v2:RetinaNet_ResNet50_FPN_V2 s3d:S3D
shufflenet_v2_x0_5:ShuffleNet_V2_X0_5 shufflenet_v2_x1_0:ShuffleNet_V2_X1_0
shufflenet_v2_x1_5:ShuffleNet_V2_X1_5 shufflenet_v2_x2_0:ShuffleNet_V2_X2_0
squeezenet1_0:SqueezeNet1_0 squeezenet1_1:SqueezeNet1_1 ssd300_vgg16:SSD300_VGG16
ssdlite320_mobilenet_v3_large:SSDLite320_MobileNet_V3_Large swin3d_b:Swin3D_B
swin3d_s:Swin3D_S swin3d_t:Swin3D_T swin_b:Swin_B swin_s:Swin_S swin_t:Swin_T
swin_v2_b:Swin_V2_B swin_v2_s:Swin_V2_S swin_v2_t:Swin_V2_T vgg11:VGG11 vgg11_bn:VGG11_BN
vgg13:VGG13 vgg13_bn:VGG13_BN vgg16:VGG16 vgg16_bn:VGG16_BN vgg19:VGG19 vgg19_bn:VGG19_BN
vit_b_16:ViT_B_16 vit_b_32:ViT_B_32 vit_h_14:ViT_H_14 vit_l_16:ViT_L_16 vit_l_32:ViT_L_32
wide_resnet101_2:Wide_ResNet101_2 wide_resnet50_2:Wide_ResNet50_2
""",
    )
)

# A file with none of these substrings cannot produce an FZ2xx finding, so it is only
# parsed (for FZ002). Keeps linting a large tree close to the cost of parsing it.
_TRIGGERS = re.compile(
    r"(?i:req\w*grad)|freezedsl|named_|state_dict|\.train\b|pretrained|param_groups|\.grad\b"
)
