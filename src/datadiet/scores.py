"""Per-example difficulty scores: GraNd, EL2N, the softmax's entropy, forgetting events, AUM and the
input-norm baseline.

Every score is float32 (float16 leaves too few distinct values for top-k cut-offs) and higher
means harder. Images are preprocessed, un-augmented float tensors [N, C, H, W]; labels int64 [N].

Training-dynamics scores (forgetting, AUM) come from trackers that the training loop feeds on every
mini-batch with `update(indices, logits, labels)`; each has `score()` and a state_dict for resuming.
"""

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .registry import AT_CHECKPOINT


@contextmanager
def _eval_mode(model):
    """Eval mode (BatchNorm on running statistics) for the block, then the caller's mode back."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _chunks(model, images, labels, size, progress=None):
    """(images, labels) in chunks of `size`, on the model's device and dtype; `progress(n)` after
    each chunk of n examples (the CLI's progress bar: the scores know nothing of terminals)."""
    param = next(model.parameters())
    for start in range(0, len(images), size):
        yield images[start : start + size].to(param.device, param.dtype), labels[start : start + size].to(param.device)
        if progress is not None:
            progress(min(size, len(images) - start))


def grand(model, images, labels, chunk_size: int = 128, progress=None) -> torch.Tensor:
    """GraNd: per-example L2 norm of the cross-entropy gradient w.r.t. all trainable parameters.

    Eval mode, so BatchNorm is a fixed per-example affine map and its buffers are left alone.
    The norms come layer by layer from one forward and one backward pass of each chunk, without
    per-example gradients of the whole model (see `_layer_sq_norms`): about the cost of a training
    step. A model with a trainable layer of another kind falls back to `grand_vmap`.
    """
    layers = {m: [p for p in m.parameters(recurse=False) if p.requires_grad] for m in model.modules()}
    layers = {m: ps for m, ps in layers.items() if ps}
    if not all(_supported(m) for m in layers):
        return grand_vmap(model, images, labels, chunk_size=min(chunk_size, 32), progress=progress)
    seen = []

    def capture(module, inputs, output):
        # The output handed on is a copy, so that an in-place op downstream (ReLU(inplace=True))
        # cannot change the tensor whose gradient is asked for.
        seen.append((module, inputs[0].detach(), output))
        return output.clone()

    hooks = [m.register_forward_hook(capture) for m in layers]
    norms = []
    try:
        with _eval_mode(model):
            for x, y in _chunks(model, images, labels, chunk_size, progress):
                seen.clear()
                # Summed, so each example's output gradients are those of its own loss.
                loss = F.cross_entropy(model(x), y, reduction="sum")
                if sorted(map(id, (m for m, _, _ in seen))) != sorted(map(id, layers)):
                    raise ValueError(
                        "a trainable layer ran more or less than once in a forward pass "
                        "(shared weights?): use grand_vmap"
                    )
                output_grads = torch.autograd.grad(loss, [out for _, _, out in seen])
                squared = sum(_layer_sq_norms(m, inp, g, layers[m]) for (m, inp, _), g in zip(seen, output_grads))
                norms.append(squared.sqrt().float().cpu())
    finally:
        for hook in hooks:
            hook.remove()
    return torch.cat(norms)


def _supported(module) -> bool:
    """Layers whose per-example parameter gradients `_layer_sq_norms` knows."""
    if isinstance(module, nn.Conv2d):
        return module.groups == 1 and module.padding_mode == "zeros" and not isinstance(module.padding, str)
    if isinstance(module, nn.BatchNorm2d):
        return module.running_mean is not None  # eval mode on running statistics: per-example affine
    return isinstance(module, nn.Linear)


def _ghost_is_cheaper(positions, d, c) -> bool:
    """Whether the Gram matrices over `positions` cost less than the [c, d] per-example gradient."""
    return positions * (d + c) < d * c


def _gram_sq_norms(a, g) -> torch.Tensor:
    """||sum_t g[b, t] a[b, t]^T||_F^2 per example b, for a [B, T, D] and g [B, T, C], without forming
    the [C, D] per-example weight gradient: sum_ts (a_t.a_s)(g_t.g_s) ("ghost norm", Goodfellow 2015;
    chosen per layer by cost, as in Bu et al. 2023)."""
    return (torch.bmm(a, a.transpose(1, 2)) * torch.bmm(g, g.transpose(1, 2))).sum((1, 2))


def _conv_weight_sq_norms(module, inputs, output_grad) -> torch.Tensor:
    """Squared norms of the per-example weight gradients of a Conv2d."""
    batch, channels = inputs.shape[:2]
    positions = output_grad.shape[2] * output_grad.shape[3]
    d = channels * module.kernel_size[0] * module.kernel_size[1]
    if _ghost_is_cheaper(positions, d, module.out_channels):
        a = F.unfold(inputs, module.kernel_size, module.dilation, module.padding, module.stride)
        return _gram_sq_norms(a.transpose(1, 2), output_grad.flatten(2).transpose(1, 2))
    # All per-example gradients at once: the weight gradient of one convolution with the examples
    # as groups. (Unfolding the input for a batched matmul is several times slower on CPU.)
    grads = torch.nn.grad.conv2d_weight(
        inputs.contiguous().reshape(1, batch * channels, *inputs.shape[2:]),
        (batch * module.out_channels, channels, *module.kernel_size),
        output_grad.contiguous().reshape(1, -1, *output_grad.shape[2:]),
        module.stride,
        module.padding,
        module.dilation,
        groups=batch,
    )
    return grads.reshape(batch, -1).pow(2).sum(1)


def _layer_sq_norms(module, inputs, output_grad, trainable) -> torch.Tensor:
    """Squared norm of each example's gradient w.r.t. the trainable parameters of one layer, from the
    layer's input and the gradient of the loss w.r.t. its output. [B], float32 or wider."""
    dtype = torch.promote_types(inputs.dtype, torch.float32)  # bf16 activations: norms in float32
    inputs, output_grad = inputs.to(dtype), output_grad.to(dtype)
    batch = len(inputs)
    total = torch.zeros(batch, dtype=dtype, device=inputs.device)

    def trains(param):
        return param is not None and any(param is p for p in trainable)

    if isinstance(module, nn.BatchNorm2d):
        x_hat = (inputs - module.running_mean[:, None, None]) * torch.rsqrt(
            module.running_var[:, None, None] + module.eps
        )
        if trains(module.weight):
            total += (output_grad * x_hat).sum((2, 3)).pow(2).sum(1)
        if trains(module.bias):
            total += output_grad.sum((2, 3)).pow(2).sum(1)
        return total
    if isinstance(module, nn.Conv2d):
        if trains(module.weight):
            total += _conv_weight_sq_norms(module, inputs, output_grad)
        if trains(module.bias):
            total += output_grad.sum((2, 3)).pow(2).sum(1)
        return total
    # Linear, on [B, D] or [B, ..., D]: positions are the middle dimensions.
    a = inputs.reshape(batch, -1, inputs.shape[-1])
    g = output_grad.reshape(batch, -1, output_grad.shape[-1])
    if trains(module.weight):
        if _ghost_is_cheaper(a.shape[1], a.shape[2], g.shape[2]):
            total += _gram_sq_norms(a, g)
        else:
            total += torch.bmm(g.transpose(1, 2), a).pow(2).sum((1, 2))
    if trains(module.bias):
        total += g.sum(1).pow(2).sum(1)
    return total


def grand_vmap(model, images, labels, chunk_size: int = 32, progress=None) -> torch.Tensor:
    """GraNd from per-example gradients of the whole model, vmap(grad(...)) over chunks: any model,
    but slower than `grand`, and memory grows with chunk_size (a parameter-sized gradient per
    example plus its activations)."""
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    # Frozen parameters and buffers enter as constants.
    consts = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    consts.update({n: b.detach() for n, b in model.named_buffers()})

    def loss(params, x, y):
        logits = functional_call(model, (params, consts), (x.unsqueeze(0),))
        return F.cross_entropy(logits, y.unsqueeze(0))

    per_example_grads = vmap(grad(loss), in_dims=(None, 0, 0))
    norms = []
    with _eval_mode(model):
        for x, y in _chunks(model, images, labels, chunk_size, progress):
            grads = per_example_grads(params, x, y)
            squared = sum(g.flatten(1).pow(2).sum(1) for g in grads.values())
            norms.append(squared.sqrt().float().cpu())
    return torch.cat(norms)


def _of_logits(score, model, images, labels, batch_size, progress):
    """`score(logits, labels)` of every example: float32 logits in eval mode, without gradients."""
    scores = []
    with _eval_mode(model), torch.no_grad():
        for x, y in _chunks(model, images, labels, batch_size, progress):
            scores.append(score(model(x).float(), y).cpu())
    return torch.cat(scores)


def el2n(model, images, labels, batch_size: int = 512, progress=None) -> torch.Tensor:
    """EL2N: ||softmax(f(x)) - onehot(y)||_2 (plain norm, not squared), eval mode."""

    def error_norm(logits, y):
        probs = logits.softmax(dim=1)
        return (probs - F.one_hot(y, probs.shape[1]).float()).norm(dim=1)

    return _of_logits(error_norm, model, images, labels, batch_size, progress)


def entropy(model, images, labels, batch_size: int = 512, progress=None) -> torch.Tensor:
    """Entropy of softmax(f(x)) in nats, eval mode: the uncertainty baseline of DeepCore (Guo et al.
    2022); it reads no label (`labels` only keeps the checkpoint scores' signature)."""

    def softmax_entropy(logits, _):
        log_probs = logits.log_softmax(dim=1)
        return -(log_probs.exp() * log_probs).sum(dim=1)

    return _of_logits(softmax_entropy, model, images, labels, batch_size, progress)


def at_checkpoint(kind, model, images, labels, spec=None, progress=None) -> torch.Tensor:
    """The checkpoint score `kind` (registry.AT_CHECKPOINT) of every example, with its options from `spec`."""
    options = {keyword: spec[key] for key, keyword in AT_CHECKPOINT[kind].options.items() if spec and key in spec}
    return globals()[kind](model, images, labels, progress=progress, **options)


def input_norm(images) -> torch.Tensor:
    """||x||_2 of each preprocessed image: the sanity baseline that GraNd at init tracks."""
    return images.flatten(1).float().norm(dim=1).cpu()


class ForgettingTracker:
    """Forgetting events (Toneva et al. 2019): correct -> incorrect between consecutive presentations.

    Fed on every training mini-batch with the train-mode logits on the augmented batch.
    An example starts as 'previously incorrect', so being wrong first is not an event.
    """

    def __init__(self, num_examples: int):
        self.counts = torch.zeros(num_examples, dtype=torch.int64)
        self.ever_correct = torch.zeros(num_examples, dtype=torch.bool)
        self.previous_correct = torch.zeros(num_examples, dtype=torch.bool)

    def to(self, device):
        """Counters on the training device: an update never waits for a copy to the CPU."""
        self.load_state_dict(self.state_dict(), device)

    def update(self, indices: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """indices: int64 [B] dataset indices, unique within the batch; logits [B, C]; labels int64 [B];
        all on the tracker's device."""
        correct = logits.detach().argmax(1) == labels
        self.counts[indices] += (self.previous_correct[indices] & ~correct).long()
        self.ever_correct[indices] |= correct
        self.previous_correct[indices] = correct

    def score(self, never_learned: str = "inf") -> torch.Tensor:
        return forgetting(self.counts.cpu(), self.ever_correct.cpu(), never_learned)

    def state_dict(self) -> dict:
        """A CPU copy."""
        return {
            "counts": self.counts.cpu().clone(),
            "ever_correct": self.ever_correct.cpu().clone(),
            "previous_correct": self.previous_correct.cpu().clone(),
        }

    def load_state_dict(self, state: dict, device=None) -> None:
        """`state` copied to `device` (default: where the counters are)."""
        device = self.counts.device if device is None else device
        self.counts = state["counts"].to(device, copy=True)
        self.ever_correct = state["ever_correct"].to(device, copy=True)
        self.previous_correct = state["previous_correct"].to(device, copy=True)


def margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Logit of the assigned label minus the largest other logit (float32): negative when misclassified."""
    logits = logits.detach().float()
    assigned = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return assigned - others.amax(1)


class AUMTracker:
    """Area under the margin (Pleiss et al. 2020): the mean margin of an example over its presentations.

    Fed like ForgettingTracker, with the (possibly noisy) assigned labels, so mislabelled examples get
    low or negative AUM. Margins are summed in float64 on the training device: the sum over 200 epochs
    keeps its precision, and, the indices of a batch being unique, a resumed run adds the same numbers
    in the same order, so it is bit-identical.
    """

    def __init__(self, num_examples: int):
        self.margin_sums = torch.zeros(num_examples, dtype=torch.float64)
        self.counts = torch.zeros(num_examples, dtype=torch.int64)

    def to(self, device):
        """Sums on the training device: an update never waits for a copy to the CPU."""
        self.load_state_dict(self.state_dict(), device)

    def update(self, indices: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """indices: int64 [B] dataset indices; logits [B, C]; labels int64 [B] (the training labels);
        all on the tracker's device."""
        self.margin_sums.index_add_(0, indices, margins(logits, labels).double())
        self.counts.index_add_(0, indices, torch.ones_like(indices))

    def score(self) -> torch.Tensor:
        return aum(self.margin_sums.cpu(), self.counts.cpu())

    def state_dict(self) -> dict:
        """A CPU copy."""
        return {"margin_sums": self.margin_sums.cpu().clone(), "counts": self.counts.cpu().clone()}

    def load_state_dict(self, state: dict, device=None) -> None:
        """`state` copied to `device` (default: where the sums are)."""
        device = self.counts.device if device is None else device
        self.margin_sums = state["margin_sums"].to(device, copy=True)
        self.counts = state["counts"].to(device, copy=True)


def aum(margin_sums, counts) -> torch.Tensor:
    """AUM score: -(mean margin), so a higher score is harder. Examples never presented (a subset run,
    or fewer steps than an epoch) have no margin at all; they get +inf, the same as never-learned
    examples in `forgetting`, rather than a NaN that would sort unpredictably."""
    scores = -(margin_sums / counts.clamp(min=1))
    scores[counts == 0] = float("inf")
    return scores.float()


def forgetting(counts, ever_correct, never_learned: str = "inf") -> torch.Tensor:
    """Forgetting score: the event count; never-learned examples get +inf ("inf", official code)
    or the largest count observed ("max", Toneva et al.'s code)."""
    if never_learned == "inf":
        fill = float("inf")
    elif never_learned == "max":
        fill = counts.max().item() if len(counts) else 0
    else:
        raise ValueError(f"never_learned must be 'inf' or 'max', got {never_learned!r}")
    scores = counts.to(torch.float32, copy=True)
    scores[~ever_correct] = fill
    return scores
