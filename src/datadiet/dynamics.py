"""Training-dynamics measures of the paper: NTK velocity (Fig. 3) and error barriers (Fig. 4).

Images are preprocessed, un-augmented float tensors [N, 3, H, W]; labels int64 [N]. Models are
evaluated in eval mode (BatchNorm on running statistics), as the scores are.
"""

import torch
from torch.func import functional_call, jacrev, vmap

from datadiet.scores import _eval_mode


def ntk_gram(model, images, chunk_size: int = 16) -> torch.Tensor:
    """Empirical NTK Gram matrix J J^T of the logits over all trainable parameters, for one block.

    J is the Jacobian of the logits [B, C] w.r.t. every trainable parameter, flattened to [B*C, P]
    example-major (row b*C + c). Returns float64 [B*C, B*C] on CPU. Eval mode, so each example's
    logits depend on that example alone and the buffers are left alone.

    Per-example Jacobians come from vmap(jacrev(...)) over chunks of `chunk_size` examples, and the
    whole block's Jacobian is held at once: about 4*B*C*P bytes in float32 (ResNet18 at width 64,
    P = 11.2M, with B = 100 and C = 10: about 45 GB), plus the activations of C backward passes per
    example of a chunk. The products are taken in the model's dtype, one parameter tensor and chunk
    pair at a time, and summed over the parameter tensors in float64: float32 products over one
    tensor (at most ~2.4M entries at width 64) keep ~1e-6 relative precision at half the cost of
    float64, which was most of the time of a block.
    """
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("the model has no trainable parameters")
    # Frozen parameters and buffers enter as constants.
    consts = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    consts.update({n: b.detach() for n, b in model.named_buffers()})
    # Set outside the vmapped function: the layout of a single vmapped example is not ours to change.
    memory_format = getattr(model, "memory_format", torch.contiguous_format)

    def logits(params, x):
        return functional_call(model, (params, consts), (x.unsqueeze(0),)).squeeze(0)

    per_example_jacobian = vmap(jacrev(logits), in_dims=(None, 0))
    chunks = []  # per chunk: {name: [chunk * C, numel]}
    with _eval_mode(model):
        for start in range(0, len(images), chunk_size):
            x = images[start : start + chunk_size].to(device, dtype).contiguous(memory_format=memory_format)
            jacobian = per_example_jacobian(params, x)  # {name: [chunk, C, *shape]}
            chunks.append({n: j.reshape(j.shape[0] * j.shape[1], -1) for n, j in jacobian.items()})
    rows = [len(next(iter(c.values()))) for c in chunks]
    offsets = [sum(rows[:i]) for i in range(len(rows) + 1)]
    gram = torch.zeros(offsets[-1], offsets[-1], dtype=torch.float64, device=device)
    for name in params:
        for i, chunk in enumerate(chunks):
            a = chunk[name]
            for j in range(i, len(chunks)):
                gram[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]] += (a @ chunks[j][name].T).double()
        for chunk in chunks:
            del chunk[name]  # free each parameter's Jacobian once it is summed
    # Only the upper block triangle was computed; mirror it (diagonal blocks are already full).
    gram = gram.triu() + gram.triu(1).T
    return gram.cpu()


def cosine_distance(a, b) -> float:
    """1 - <a, b>_F / (||a||_F ||b||_F), in float64."""
    a, b = a.double().flatten(), b.double().flatten()
    return 1.0 - (a @ b / (a.norm() * b.norm())).item()


def ntk_velocity(
    model_before, model_after, images, block_order, block_size, chunk_size: int = 16, blocks=None
) -> torch.Tensor:
    """Kernel velocity (Fort et al. 2020) per block of examples: the cosine distance between the
    NTK Gram matrices of the block at two checkpoints (the paper: epochs t and t+1).

    block_order: int64 example indices sorted by a score, easiest first; it is cut into contiguous
    blocks of `block_size` (a last partial block is dropped). blocks: the block numbers to compute,
    e.g. evenly spaced ones on a big dataset; default all. Returns float32 [len(blocks)].
    """
    num_blocks = len(block_order) // block_size
    blocks = range(num_blocks) if blocks is None else blocks
    velocities = []
    for k in blocks:
        if not 0 <= k < num_blocks:
            raise IndexError(f"block {k} out of range: there are {num_blocks} blocks of {block_size}")
        indices = block_order[k * block_size : (k + 1) * block_size]
        x = images[indices.to(images.device)]
        velocities.append(cosine_distance(ntk_gram(model_before, x, chunk_size), ntk_gram(model_after, x, chunk_size)))
    return torch.tensor(velocities, dtype=torch.float32)


def interpolate(state_a, state_b, alpha) -> dict:
    """alpha * a + (1 - alpha) * b for every floating-point entry of two state_dicts.

    BatchNorm running statistics are interpolated like the parameters (error_barrier can re-estimate
    them on data instead); integer entries (num_batches_tracked) are copied from state_a.
    """
    if state_a.keys() != state_b.keys():
        raise ValueError("state_dicts have different keys")
    out = {}
    for key, a in state_a.items():
        b = state_b[key]
        if a.shape != b.shape:
            raise ValueError(f"{key}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
        # This form, not lerp, so that alpha = 1 and alpha = 0 give the end points exactly.
        out[key] = alpha * a + (1 - alpha) * b.to(a.device) if a.is_floating_point() else a.clone()
    return out


def reestimate_bn(model, images, batch_size: int = 128):
    """Reset every BatchNorm layer's running statistics and recompute them on `images`.

    Train-mode forward passes without gradients, in near-equal batches of at most `batch_size`, each
    batch weighted equally (momentum None: a cumulative average). Interpolated running statistics are
    not the interpolated net's activation statistics (its activations shrink), which adds a spurious
    barrier (Jordan et al. 2023, REPAIR). The model's mode and the layers' momentum are left as they were.
    """
    if len(images) < 2:
        raise ValueError("BatchNorm statistics need at least 2 images")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    param = next(model.parameters())
    memory_format = getattr(model, "memory_format", torch.contiguous_format)
    was_training = model.training
    try:
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None
        model.train()
        with torch.no_grad():
            for x in torch.tensor_split(images, -(-len(images) // batch_size)):
                model(x.to(param.device, param.dtype).contiguous(memory_format=memory_format))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)


def error_rate(model, images, labels, batch_size: int = 1000) -> float:
    """Fraction of examples misclassified, eval mode, no grad."""
    if len(images) == 0:
        raise ValueError("error rate of an empty set")
    param = next(model.parameters())
    memory_format = getattr(model, "memory_format", torch.contiguous_format)
    wrong = 0
    with _eval_mode(model), torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(param.device, param.dtype)
            y = labels[start : start + batch_size].to(param.device)
            wrong += (model(x.contiguous(memory_format=memory_format)).argmax(1) != y).sum().item()
    return wrong / len(images)


def error_barrier(
    model, state_a, state_b, images, labels, alphas=(0.5,), bn_images=None, bn_batch_size: int = 128
) -> dict:
    """Error barrier on an example set (linear mode connectivity, Frankle et al. 2020):

    max over alpha of err(alpha w_a + (1 - alpha) w_b) - [alpha err(w_a) + (1 - alpha) err(w_b)].

    bn_images None: BatchNorm running statistics interpolated with the weights. Otherwise they are
    re-estimated on `bn_images` (reestimate_bn, batches of `bn_batch_size`) for every model evaluated,
    the end points included, so that the barrier compares like with like and is 0 at alpha 0 and 1.

    `model` is a model of the right architecture; each state is loaded into it in turn, and it is
    left holding the last interpolation (the caller owns it), so the states must not be views of its
    own tensors (model.state_dict() is: clone it). Returns {"barrier", "errors":
    {alpha: error}, "error_a", "error_b"}.
    """

    def error_of(state):
        model.load_state_dict(state)
        if bn_images is not None:
            reestimate_bn(model, bn_images, bn_batch_size)
        return error_rate(model, images, labels)

    error_a, error_b = error_of(state_a), error_of(state_b)
    errors = {alpha: error_of(interpolate(state_a, state_b, alpha)) for alpha in alphas}
    barrier = max(errors[alpha] - (alpha * error_a + (1 - alpha) * error_b) for alpha in alphas)
    return {"barrier": barrier, "errors": errors, "error_a": error_a, "error_b": error_b}


def example_sets(scores, size, seed) -> dict:
    """The sets S of the mode-connectivity experiment: the `size` highest-scoring examples, the
    `size` lowest and `size` seeded uniform random ones, each as sorted int64 indices.

    One stable ascending sort, as in selection: equal scores keep index order, so "low" takes the
    lower indices of a tie at its boundary and "high" the higher ones.
    """
    scores = torch.as_tensor(scores)
    n = len(scores)
    if not 0 <= size <= n:
        raise ValueError(f"set size must be in [0, {n}], got {size}")
    order = torch.sort(scores, stable=True).indices
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return {
        "high": order[n - size :].sort().values,
        "low": order[:size].sort().values,
        "random": perm[:size].sort().values,
    }


def measured_blocks(num_examples, block_size, blocks=None):
    """Indices of the score-sorted blocks whose velocity is measured: all of them, or `blocks` evenly
    spaced from the easiest to the hardest."""
    count = num_examples // block_size
    if count < 2:
        raise ValueError(f"ntk block_size {block_size} leaves fewer than 2 blocks of {num_examples} examples")
    if not blocks:
        return list(range(count))
    return sorted({round(i * (count - 1) / (blocks - 1)) for i in range(blocks)})


def child_data_seed(parent_data_seed, child):
    """The data order of a mode-connectivity child: children of one parent differ only in it, and no
    child shares an order with a parent or another parent's child (the parents' data seeds are
    424242 apart, and the prime 1_000_003 divides no small multiple of that)."""
    return parent_data_seed + 1_000_003 * (child + 1)
