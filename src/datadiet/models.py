"""Low-resolution ResNets as in the paper (3x3 stride-1 stem, no max-pool, a width multiplier), and
airbench, a fast CIFAR proxy network (KellerJordan/cifar10-airbench, airbench94).

The blocks are the standard ones (He et al. 2016, as in torchvision); they are written out here
because importing torchvision costs every job about 2 s (it loads torch._dynamo), and because
torchvision's ResNet fixes the stage widths at 64..512.

The ResNets have two weight initialisations (`init`): "flax", the official code's (Flax defaults:
lecun_normal, a truncated normal of variance 1/fan_in, for every conv and dense kernel, zero dense
bias), and "torch", torchvision's (kaiming normal fan_out for convs, PyTorch's default Linear). Both
start BN at scale 1, shift 0, and each bottleneck's last BN at scale 0. GraNd at init depends on
which. airbench starts as its reference does, whatever `init`; its whitening conv is then set from
the training images by `fit_whitening`, which the training code may call for any model.
"""

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .runtime import files


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


def memory_format(width):
    """The layout of a network whose narrowest layer has `width` channels.

    channels_last is ~1.35x faster on CPU, but oneDNN's channels_last kernels corrupt memory (double
    free in backward, torch 2.14.1) when a layer has fewer than 8 channels. Inputs should be in this
    format too (data.normalize takes it): mixed formats hit the same kernels.
    """
    return torch.channels_last if width >= 8 else torch.contiguous_format


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
        self.memory_format = memory_format(width)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return fp32_head(self.fc, self.pool(x).flatten(1))


def fp32_head(fc, features):
    """The classifier in float32 even under bf16 autocast: the logits that the loss, forgetting and AUM
    read keep fp32's resolution (a 10-class layer costs nothing). Without autocast, `fc(features)` exactly
    (in the features' own dtype: float64 in the scores' reference tests)."""
    if not torch.is_autocast_enabled(features.device.type):
        return fc(features)
    with torch.autocast(features.device.type, enabled=False):
        return fc(features.float())


def airbench_conv(in_channels, out_channels, kernel=3, padding=1, bias=False):
    """torch's default init, then the first in_channels filters the identity (dirac), as airbench.

    `padding` is an int, not "same": scores.grand's per-example norms need integer padding.
    """
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=padding, bias=bias)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:in_channels])
        if bias:
            conv.bias.zero_()
    return conv


def airbench_norm(channels):
    """BatchNorm with a frozen scale of 1 and a trainable shift, eps 1e-12; momentum 0.4 in torch's
    convention is airbench's 0.6 (the weight of the old running statistics)."""
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=0.4)
    norm.weight.requires_grad_(False)
    return norm


class ConvGroup(nn.Module):
    """conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv1, self.norm1 = airbench_conv(in_channels, out_channels), airbench_norm(out_channels)
        self.conv2, self.norm2 = airbench_conv(out_channels, out_channels), airbench_norm(out_channels)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        x = F.gelu(self.norm1(self.pool(self.conv1(x))))
        return F.gelu(self.norm2(self.conv2(x)))


WHITEN_KERNEL = 2
WHITEN_WIDTH = 2 * 3 * WHITEN_KERNEL**2  # each eigenvector of the 2x2 RGB patches, and its negative
WHITEN_EPS = 5e-4  # added to the eigenvalues, so near-constant directions are not blown up
WHITEN_IMAGES = 5000  # images whose patches estimate the covariance, as airbench


class Airbench(nn.Module):
    """airbench94's network (KellerJordan/cifar10-airbench): a frozen 2x2 whitening conv fitted to
    the data (`fit_whitening`), GELU, three conv groups of width, 4 x width and 4 x width channels
    (width=64 is the reference 64/256/256), a 3x3 max-pool and a bias-free classifier scaled by 1/9.
    Made for 32x32 inputs, which leave 31, 15, 7, 3 and finally 1 pixel across."""

    def __init__(self, num_classes, width=64):
        super().__init__()
        self.whiten = airbench_conv(3, WHITEN_WIDTH, WHITEN_KERNEL, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)  # set from the data; its bias still trains
        widths = [WHITEN_WIDTH, width, 4 * width, 4 * width]
        self.groups = nn.Sequential(*(ConvGroup(a, b) for a, b in zip(widths, widths[1:])))
        self.pool = nn.MaxPool2d(3)
        self.fc = nn.Linear(widths[-1], num_classes, bias=False)
        self.memory_format = memory_format(width)

    def forward(self, x):
        x = self.groups(F.gelu(self.whiten(x)))
        return fp32_head(self.fc, self.pool(x).flatten(1)) / 9


def has_whitening(model):
    """Whether the model's first layer is set from the training images (`fit_whitening`)."""
    return isinstance(model, Airbench)


def freeze_whitening_bias(model, frozen):
    """airbench trains its whitening layer's bias for the first epochs only. A no-op for the ResNets."""
    if has_whitening(model):
        model.whiten.bias.requires_grad_(not frozen)


@torch.no_grad()
def fit_whitening(model, images):
    """Set airbench's whitening conv from the first WHITEN_IMAGES of `images` (normalised float
    [N, 3, H, W]): each filter is an eigenvector of the 2x2 patches' (uncentred) covariance scaled by
    1/sqrt(eigenvalue + WHITEN_EPS), largest eigenvalue first, then the same filters negated (so GELU
    passes both signs). A no-op for models without one (the ResNets)."""
    if not has_whitening(model):
        return
    eigenvalues, eigenvectors = torch.linalg.eigh(patch_covariance(images[:WHITEN_IMAGES]))
    filters = (eigenvectors / (eigenvalues + WHITEN_EPS).sqrt()).T.flip(0)
    weight = model.whiten.weight
    weight.copy_(torch.cat([filters, -filters]).reshape(weight.shape))


def patch_covariance(images, chunk=500):
    """E[p p^T] over every 2x2 patch p of `images`, flattened as a conv weight is (channel, row,
    column), in float64; in chunks, so 5000 images' patches are never all in memory."""
    total = 0
    for start in range(0, len(images), chunk):
        patches = F.unfold(images[start : start + chunk].double(), WHITEN_KERNEL)  # [B, 12, positions]
        total = total + torch.einsum("bip,bjp->ij", patches, patches)
    return total / (len(images) * patches.shape[2])


ARCHS = {
    "resnet18": partial(ResNet, BasicBlock, [2, 2, 2, 2]),
    "resnet50": partial(ResNet, Bottleneck, [3, 4, 6, 3]),
    "airbench": Airbench,
}


def build(arch, num_classes, width=64, init="flax"):
    """A network of ARCHS; width=64 is the standard one (ResNets: the stem's channels; airbench: the
    first group's), smaller widths scale every stage. `init`: one of INITS, drawn from torch's global
    generator; it applies to the ResNets only: airbench always starts as the reference does (torch's
    defaults, dirac convs), and its whitening layer waits for `fit_whitening`."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHS)}")
    if width < 1:
        raise ValueError(f"width must be a positive integer, got {width}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {list(INITS)}")
    model = ARCHS[arch](num_classes, width)
    if isinstance(model, ResNet):
        init_weights(model, init)
    return model.to(memory_format=model.memory_format)


def init_model(arch, num_classes, width, seed, init="flax"):
    """The network `build` makes, initialised from `seed`."""
    torch.manual_seed(seed)
    return build(arch, num_classes, width, init)


def checkpoint(model, arch, width, num_classes, epoch):
    """What a model file holds: its weights and what rebuilds it (`load_checkpoint`)."""
    return {"model": model.state_dict(), "arch": arch, "width": width, "num_classes": num_classes, "epoch": epoch}


def load_checkpoint(path, arch=None):
    """A model saved by `checkpoint`, rebuilt; a clear error if it is of another architecture."""
    ckpt = files.load_tensors(path)
    if arch is not None and ckpt["arch"] != arch:
        raise ValueError(f"checkpoint {path} is a {ckpt['arch']}, expected {arch}")
    model = build(ckpt["arch"], ckpt["num_classes"], ckpt["width"])
    model.load_state_dict(ckpt["model"])
    return model
