"""On a GPU (skipped without one): our training step (whole dataset on the GPU, augmentation there,
bf16 autocast, channels_last) against a plain torchvision ResNet18 fed by a DataLoader with PIL
transforms, and our GraNd scoring against our training, on the same images."""

import os

import torch

from benchmarks.common import Entry, rates
from benchmarks.pipeline import MEAN, STD, dataloader_epoch
from datadiet import scores
from datadiet.models import build
from datadiet.train import TrainConfig, TrainSet, train


def run(folder, train_split, batch=128):
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    n = len(train_split.labels) // batch * batch
    mean, std = torch.tensor(MEAN), torch.tensor(STD)
    train_set = TrainSet(train_split.images.to(device), train_split.labels.to(device), mean.to(device), std.to(device))
    ours = build("resnet18", 10, 64).to(device)
    cfg = TrainConfig(epochs=1, batch_size=batch, precision="bf16")

    def our_epoch():
        train(ours, train_set, cfg, 0, n // batch)
        torch.cuda.synchronize()

    from torchvision import models

    plain = models.resnet18(num_classes=10).to(device)
    optimizer = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9)

    def plain_epoch():
        for x, y in dataloader_epoch(folder / "train", batch, min(8, os.cpu_count() or 1), yield_batches=True):
            loss = torch.nn.functional.cross_entropy(plain(x.to(device)), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        torch.cuda.synchronize()

    images = ((train_split.images.float() / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)).to(device)
    images = images.contiguous(memory_format=torch.channels_last)

    def grand():
        scores.grand(ours, images[:n], train_split.labels[:n].to(device), chunk_size=512)
        torch.cuda.synchronize()

    measured = rates({"ours": our_epoch, "plain": plain_epoch, "grand": grand}, n, repeats=3)
    gpu = torch.cuda.get_device_name()
    return [
        Entry(
            "gpu_train_vs_torchvision",
            measured["ours"],
            "img/s",
            measured["plain"],
            "",
            f"{gpu}: our ResNet18 (width 64) training vs torchvision resnet18 + DataLoader, {n} images",
        ),
        Entry(
            "gpu_grand_vs_train",
            measured["grand"],
            "img/s",
            measured["ours"],
            ">= 0.5",
            f"{gpu}: layer-by-layer GraNd (chunks of 512) over our training",
        ),
    ]
