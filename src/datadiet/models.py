"""Low-resolution ResNets as in the paper: 3x3 stride-1 stem, no max-pool, a width multiplier.

The blocks are the standard ones (He et al. 2016, as in torchvision); they are written out here
because importing torchvision costs every job about 2 s (it loads torch._dynamo), and because
torchvision's ResNet fixes the stage widths at 64..512.

Two weight initialisations (`init`): "flax", the official code's (Flax defaults: lecun_normal, a
truncated normal of variance 1/fan_in, for every conv and dense kernel, zero dense bias), and
"torch", torchvision's (kaiming normal fan_out for convs, PyTorch's default Linear). Both start BN at
scale 1, shift 0, and each bottleneck's last BN at scale 0. GraNd at init depends on which.
"""

import torch
from torch import nn


def conv_bn(in_planes, planes, kernel, stride=1):
    conv = nn.Conv2d(in_planes, planes, kernel, stride=stride, padding=kernel // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(planes))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(in_planes, planes, 3, stride)
        self.conv2, self.bn2 = conv_bn(planes, planes, 3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(in_planes, planes, 1)
        self.conv2, self.bn2 = conv_bn(planes, planes, 3, stride)  # stride on the 3x3, as torchvision
        self.conv3, self.bn3 = conv_bn(planes, planes * self.expansion, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


ARCHS = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet50": (Bottleneck, [3, 4, 6, 3])}


INITS = ("flax", "torch")
# Std of a standard normal truncated to [-2, 2]: dividing by it gives the truncated normal the
# variance asked for (as jax.nn.initializers.variance_scaling does).
TRUNCATED_STD = 0.87962566103423978


def lecun_normal_(weight):
    """Flax's lecun_normal: truncated normal at 2 std, variance 1/fan_in (fan_in: inputs x kernel)."""
    std = weight[0].numel() ** -0.5 / TRUNCATED_STD
    return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def init_weights(model, init):
    for m in model.modules():
        if init == "flax" and isinstance(m, (nn.Conv2d, nn.Linear)):
            lecun_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif init == "torch" and isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # The paper's ResNet50 starts each bottleneck as the identity (last BN scale = 0).
        if isinstance(m, Bottleneck):
            nn.init.zeros_(m.bn3.weight)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes, width=64):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(3, width, 3), nn.ReLU(inplace=True))
        stages, in_planes = [], width
        for i, n_blocks in enumerate(layers):
            planes, stride = width * 2**i, 1 if i == 0 else 2
            blocks = []
            for j in range(n_blocks):
                downsample = None
                if j == 0 and (stride != 1 or in_planes != planes * block.expansion):
                    downsample = conv_bn(in_planes, planes * block.expansion, 1, stride)
                blocks.append(block(in_planes, planes, stride if j == 0 else 1, downsample))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        # channels_last is ~1.35x faster on CPU, but oneDNN's channels_last kernels corrupt memory
        # (double free in backward, torch 2.14.1) when a layer has fewer than 8 channels. Inputs
        # should be in this format too (data.normalize takes it): mixed formats hit the same kernels.
        self.memory_format = torch.channels_last if width >= 8 else torch.contiguous_format

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(self.pool(x).flatten(1))


def build(arch, num_classes, width=64, init="flax"):
    """A low-res ResNet; width=64 is the standard network, smaller widths scale every stage; `init`:
    one of INITS, drawn from torch's global generator."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHS)}")
    if width < 1:
        raise ValueError(f"width must be a positive integer, got {width}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {list(INITS)}")
    block, layers = ARCHS[arch]
    model = ResNet(block, layers, num_classes, width)
    init_weights(model, init)
    return model.to(memory_format=model.memory_format)
