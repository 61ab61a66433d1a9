"""Scoring speed against training speed, for one model and batch: GraNd (layer by layer and vmap),
EL2N, and the per-example loop that both GraNd implementations replace."""

import torch
import torch.nn.functional as F

from benchmarks.common import Entry, rates
from datadiet import scores
from datadiet.models import build
from datadiet.reference import grand_loop  # the tests' slow, obvious implementation


def run(images, labels, width, batch=128, suffix=""):
    torch.manual_seed(0)
    model = build("resnet18", 10, width)
    x = images.contiguous(memory_format=model.memory_format)
    n = len(x) // batch * batch
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train():
        model.train()
        for start in range(0, n, batch):
            loss = F.cross_entropy(model(x[start : start + batch]), labels[start : start + batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    few = min(n, 128 if width <= 16 else 32)  # the loop and vmap are slow: time them on fewer images
    measured = rates(
        {
            "train": train,
            "grand": lambda: scores.grand(model, x[:n], labels[:n], chunk_size=batch),
            "el2n": lambda: scores.el2n(model, x[:n], labels[:n], batch_size=512),
        },
        n,
        repeats=3,
    )
    slow = rates(
        {
            "grand": lambda: scores.grand(model, x[:few], labels[:few], chunk_size=batch),
            "vmap": lambda: scores.grand_vmap(model, x[:few], labels[:few], chunk_size=32),
            "loop": lambda: grand_loop(model, x[:few], labels[:few]),
        },
        few,
        repeats=3,
    )
    model_name = f"ResNet18 width {width}, batch {batch}, {torch.get_num_threads()} threads"
    return [
        Entry(
            f"grand_vs_train{suffix}",
            measured["grand"],
            "img/s",
            measured["train"],
            ">= 0.5",
            f"layer-by-layer GraNd, all parameters, eval mode, over training steps; {model_name}",
        ),
        Entry(
            f"el2n_vs_train{suffix}",
            measured["el2n"],
            "img/s",
            measured["train"],
            ">= 2",
            f"EL2N (eval, no grad, batches of 512) over training steps; {model_name}",
        ),
        Entry(
            f"grand_vmap_vs_loop{suffix}",
            slow["vmap"],
            "img/s",
            slow["loop"],
            ">= 5",
            f"torch.func vmap GraNd (chunks of 32) over a per-example backward loop, {few} images; {model_name}",
        ),
        Entry(
            f"grand_layerwise_vs_loop{suffix}",
            slow["grand"],
            "img/s",
            slow["loop"],
            ">= 5",
            f"layer-by-layer GraNd (the one the study uses) over the same loop; {model_name}",
        ),
    ]
