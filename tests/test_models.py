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


def kernels(model):
    """(name, weight) of every conv and linear layer large enough for its std to be measured."""
    layers = (torch.nn.Conv2d, torch.nn.Linear)
    return [
        (n, m.weight.detach()) for n, m in model.named_modules() if isinstance(m, layers) and m.weight.numel() >= 2000
    ]


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_flax_init_is_lecun_normal_truncated_at_two_std_with_zero_bias(arch):
    torch.manual_seed(0)
    model = models.build(arch, 100, width=16, init="flax")
    checked = kernels(model)
    assert len(checked) > 10 and any(n == "fc" for n, _ in checked)
    for name, w in checked:
        fan_in = w[0].numel()  # in channels x kernel height x kernel width
        assert w.std().item() == pytest.approx(fan_in**-0.5, rel=0.06), name
        bound = 2 * fan_in**-0.5 / 0.87962566103423978  # 2 std of the untruncated normal
        assert w.abs().max().item() <= bound and w.abs().max().item() > 0.9 * bound, name
    assert torch.all(model.fc.bias == 0)
    if arch == "resnet50":
        assert all(torch.all(block.bn3.weight == 0) for stage in model.stages for block in stage)


def test_torch_init_is_kaiming_fan_out_and_pytorch_default_linear():
    torch.manual_seed(0)
    model = models.build("resnet18", 100, width=16, init="torch")
    for name, w in kernels(model):
        if w.dim() == 4:
            fan_out = w.shape[0] * w[0, 0].numel()
            assert w.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.06), name
    bound = model.fc.in_features**-0.5  # PyTorch's default Linear: uniform in +-1/sqrt(fan_in)
    assert model.fc.weight.abs().max() <= bound and model.fc.bias.abs().max() <= bound
    assert torch.all(model.fc.bias != 0)


def test_the_two_inits_give_different_logits_and_unknown_init_is_an_error():
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    logits = {}
    for init in models.INITS:
        torch.manual_seed(0)
        logits[init] = models.build("resnet18", 10, width=8, init=init).eval()(x)
    assert not torch.allclose(logits["flax"], logits["torch"], atol=1e-3)
    with pytest.raises(ValueError, match="unknown init 'jax'"):
        models.build("resnet18", 10, init="jax")
