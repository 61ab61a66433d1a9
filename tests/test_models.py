import pytest
import torch
import torch.nn.functional as F

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


def test_airbench_outputs_logits_on_cifar_sized_images():
    model = models.build("airbench", num_classes=7, width=8)
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 7)
    assert [g.conv2.out_channels for g in model.groups] == [8, 32, 32]  # width, 4 x width, 4 x width


def test_full_width_airbench_has_the_reference_parameter_count():
    def count(w, classes):
        whiten = 24 * 3 * 2 * 2 + 24  # frozen weight, trainable bias
        convs = 9 * (24 * w + w * w + w * 4 * w + 3 * (4 * w) ** 2)  # 3x3, no bias
        norms = 2 * (w + w + 4 * 4 * w)  # scale and shift of six BatchNorms
        return whiten + convs + norms + 4 * w * classes  # bias-free classifier

    model = models.build("airbench", 10)
    assert count(64, 10) == 1_972_792  # airbench94's network (KellerJordan/cifar10-airbench)
    assert sum(p.numel() for p in model.parameters()) == count(64, 10)
    assert sum(p.numel() for p in models.build("airbench", 100, width=8).parameters()) == count(8, 100)


def patches_covariance(images):
    """E[p p^T] of the 2x2 patches flattened as (channel, row, column), by Tensor.unfold."""
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
    return patches.T @ patches / len(patches)


def correlated_images(n, seed=0):
    """Neighbouring pixels and colours correlated, and one direction of variance ~1e-4, below the
    whitening eps (5e-4), so that both the rotation and the eps are tested."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 3, 9, 9, generator=g, dtype=torch.float64)
    x = base[..., :8, :8] + 0.5 * base[..., 1:, 1:]
    x = torch.einsum("ij,njhw->nihw", torch.tensor([[1.0, 0, 0], [0.6, 1, 0], [0.3, 0.2, 1]]).double(), x)
    x[:, 2] = x[:, 0] + 0.01 * torch.randn(n, 8, 8, generator=g, dtype=torch.float64)
    return x


def test_whitening_conv_decorrelates_2x2_patches():
    images = correlated_images(500)
    model = models.build("airbench", 10, width=8).double()
    models.fit_whitening(model, images)
    weight = model.whiten.weight.detach()
    torch.testing.assert_close(weight[12:], -weight[:12])
    # The first 12 filters whiten: their outputs' covariance is diagonal, eigenvalue / (eigenvalue +
    # eps), largest eigenvalue first.
    out = F.conv2d(images, weight[:12]).permute(0, 2, 3, 1).reshape(-1, 12)
    eigenvalues = torch.linalg.eigvalsh(patches_covariance(images)).flip(0)
    expected = torch.diag(eigenvalues / (eigenvalues + 5e-4))
    assert expected[-1, -1] < 0.5 < expected[0, 0]  # eps matters for the smallest direction
    torch.testing.assert_close(out.T @ out / len(out), expected, rtol=0, atol=1e-9)


def test_whitening_is_fitted_on_the_first_5000_images_only():
    images = correlated_images(5001)
    images[5000] = 1e3  # an outlier that would dominate the covariance
    first, everything = models.build("airbench", 10, width=8), models.build("airbench", 10, width=8)
    models.fit_whitening(first, images[:5000])
    models.fit_whitening(everything, images)
    assert torch.equal(first.whiten.weight, everything.whiten.weight)


def test_airbench_freezes_whitening_weight_and_batchnorm_scales():
    model = models.build("airbench", 10, width=8)
    models.fit_whitening(model, torch.randn(16, 3, 32, 32))
    F.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.arange(4)).backward()
    assert model.whiten.weight.grad is None and model.whiten.bias.grad.abs().sum() > 0
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 6
    for norm in norms:
        assert not norm.weight.requires_grad and torch.all(norm.weight == 1) and norm.bias.requires_grad
        assert norm.eps == 1e-12 and norm.momentum == 0.4  # airbench's 0.6 in torch's convention


def test_airbench_convs_start_as_identity_on_their_inputs():
    model = models.build("airbench", 10, width=8)
    for conv in [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][1:]:
        assert conv.padding == (1, 1)  # an int, not "same": scores.grand needs integer padding
        identity = torch.zeros_like(conv.weight[: conv.in_channels])
        torch.nn.init.dirac_(identity)
        assert torch.equal(conv.weight[: conv.in_channels], identity)
    assert torch.all(model.whiten.bias == 0)


def test_airbench_ignores_init_but_checks_it():
    built = {}
    for init in models.INITS:
        torch.manual_seed(0)
        built[init] = models.build("airbench", 10, width=8, init=init).state_dict()
    assert all(torch.equal(built["flax"][k], built["torch"][k]) for k in built["flax"])
    with pytest.raises(ValueError, match="unknown init 'jax'"):
        models.build("airbench", 10, init="jax")


def test_fit_whitening_is_a_no_op_on_resnets():
    model = models.build("resnet18", 10, width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    models.fit_whitening(model, torch.randn(8, 3, 32, 32))
    assert not models.has_whitening(model) and models.has_whitening(models.build("airbench", 10, width=4))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("width", [8, 64])
def test_airbench_channels_last_forward_backward_matches_contiguous(width):
    # The whitening conv has 3 input channels: oneDNN's channels_last kernels must still be right.
    torch.manual_seed(0)
    model = models.build("airbench", 10, width)
    assert model.memory_format == torch.channels_last
    models.fit_whitening(model, torch.randn(16, 3, 32, 32))
    plain = models.build("airbench", 10, width).to(memory_format=torch.contiguous_format)
    plain.load_state_dict(model.state_dict())
    x, y = torch.randn(4, 3, 32, 32), torch.arange(4)
    results = []
    for net, layout in [(model, torch.channels_last), (plain, torch.contiguous_format)]:
        loss = F.cross_entropy(net(x.contiguous(memory_format=layout)), y)
        results.append([loss, *torch.autograd.grad(loss, [p for p in net.parameters() if p.requires_grad])])
    for ours, theirs in zip(*results):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
