"""Tiny models and batches shared by the score and dynamics tests."""

import torch

from datadiet.models import build


def tiny_resnet(dtype=torch.float32, seed=0):
    """A width-2 ResNet18 with running statistics far from the neutral mean 0 / variance 1."""
    torch.manual_seed(seed)
    model = build("resnet18", 10, width=2).to(dtype)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(3 * torch.randn(16, 3, 8, 8, dtype=dtype) + 1)
    return model


def batch(n=7, dtype=torch.float32, seed=1):
    torch.manual_seed(seed)
    return torch.randn(n, 3, 8, 8, dtype=dtype), torch.randint(0, 10, (n,))


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}
