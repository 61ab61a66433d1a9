"""NTK velocity and the error barrier against the tests' straightforward implementations: one logit
at a time with autograd, and hand-interpolated models evaluated one example at a time."""

import torch

from benchmarks.common import Entry, rates
from datadiet import dynamics
from datadiet.models import build
from datadiet.reference import error_barrier_loop, ntk_velocity_loop


def run(images, labels, width=8, block_size=20, barrier_examples=500):
    torch.manual_seed(0)
    before, after = build("resnet18", 10, width).eval(), build("resnet18", 10, width).eval()
    x = images.contiguous(memory_format=before.memory_format)
    order = torch.arange(2 * block_size)
    # Measured as runs per second, so that the ratio reads "times faster" like the others.
    ntk = rates(
        {
            "ours": lambda: dynamics.ntk_velocity(before, after, x, order, block_size),
            "naive": lambda: ntk_velocity_loop(before, after, x, order, block_size, blocks=[0, 1]),
        },
        1,
        repeats=3,
    )
    holder = build("resnet18", 10, width)
    xs, ys = x[:barrier_examples], labels[:barrier_examples]
    alphas = (0.25, 0.5, 0.75)
    lmc = rates(
        {
            "ours": lambda: dynamics.error_barrier(
                holder, {k: v.clone() for k, v in before.state_dict().items()}, after.state_dict(), xs, ys, alphas
            ),
            "naive": lambda: error_barrier_loop(before, after, xs, ys, alphas),
        },
        1,
        repeats=3,
    )
    model_name = f"ResNet18 width {width}, {torch.get_num_threads()} threads"
    return [
        Entry(
            "ntk_velocity_vs_naive",
            ntk["ours"],
            "runs/s",
            ntk["naive"],
            "",
            f"2 blocks of {block_size} examples, vmap(jacrev) Gram vs one autograd.grad per logit; {model_name}",
        ),
        Entry(
            "lmc_barrier_vs_naive",
            lmc["ours"],
            "runs/s",
            lmc["naive"],
            "",
            f"{barrier_examples} examples, alphas {alphas}, batched eval vs one example at a time; {model_name}",
        ),
    ]
