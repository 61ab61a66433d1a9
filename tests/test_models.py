import pytest
import torch

from datadiet import models


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_low_res_resnet_keeps_resolution_in_stem_and_outputs_logits(arch):
    model = models.build(arch, num_classes=7, width=4)
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 7)
    stem_conv = model.stem[0]
    assert stem_conv.kernel_size == (3, 3) and stem_conv.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    # the stem keeps 32x32: the first stage sees full resolution
    assert model.stem(x).shape == (2, 4, 32, 32)


def test_width_multiplies_every_stage():
    narrow, wide = models.build("resnet18", 10, width=8), models.build("resnet18", 10, width=16)
    assert wide.fc.in_features == 2 * narrow.fc.in_features == 128
    assert models.build("resnet50", 10, width=8).fc.in_features == 8 * 8 * 4  # bottleneck expansion 4


def test_full_width_resnet18_has_the_standard_parameter_count():
    count = sum(p.numel() for p in models.build("resnet18", 10).parameters())
    assert count == 11_173_962  # the CIFAR ResNet18 of the paper (3x3 stem, 10 classes)


def test_resnet50_bottlenecks_start_as_identity():
    model = models.build("resnet50", 10, width=4)
    last_bns = [block.bn3 for stage in model.stages for block in stage]
    assert len(last_bns) == 16 and all(torch.all(bn.weight == 0) for bn in last_bns)


def test_unknown_arch_and_bad_width_are_clear_errors():
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        models.build("vgg", 10)
    with pytest.raises(ValueError, match="width"):
        models.build("resnet18", 10, width=0)


def test_channels_last_only_where_onednn_handles_it():
    narrow, wide = models.build("resnet18", 10, width=4), models.build("resnet18", 10, width=8)
    assert narrow.memory_format == torch.contiguous_format
    assert wide.memory_format == torch.channels_last
    assert wide.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
