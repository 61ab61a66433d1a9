"""Per-example difficulty scores: GraNd, EL2N, forgetting events, AUM and the input-norm baseline.

Every score is float32 (float16 leaves too few distinct values for top-k cut-offs) and higher
means harder. Images are preprocessed, un-augmented float tensors [N, C, H, W]; labels int64 [N].

Training-dynamics scores (forgetting, AUM) come from trackers that the training loop feeds on every
mini-batch with `update(indices, logits, labels)`; each has `score()` and a state_dict for resuming.
"""
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap


@contextmanager
def _eval_mode(model):
    """Eval mode (BatchNorm on running statistics) for the block, then the caller's mode back."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def grand(model, images, labels, chunk_size: int = 32) -> torch.Tensor:
    """GraNd: per-example L2 norm of the cross-entropy gradient w.r.t. all trainable parameters.

    Eval mode, so BatchNorm is a fixed per-example affine map and its buffers are left alone.
    Per-example gradients come from vmap(grad(...)) over chunks; memory grows with chunk_size
    (about one parameter-sized gradient per example plus its activations).
    """
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
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
        for start in range(0, len(images), chunk_size):
            x = images[start:start + chunk_size].to(device, dtype)
            y = labels[start:start + chunk_size].to(device)
            grads = per_example_grads(params, x, y)
            squared = sum(g.flatten(1).pow(2).sum(1) for g in grads.values())
            norms.append(squared.sqrt().float().cpu())
    return torch.cat(norms)


def el2n(model, images, labels, batch_size: int = 512) -> torch.Tensor:
    """EL2N: ||softmax(f(x)) - onehot(y)||_2 (plain norm, not squared), eval mode."""
    param = next(model.parameters())
    scores = []
    with _eval_mode(model), torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(param.device, param.dtype)
            y = labels[start:start + batch_size].to(param.device)
            probs = model(x).float().softmax(dim=1)
            error = probs - F.one_hot(y, probs.shape[1]).float()
            scores.append(error.norm(dim=1).cpu())
    return torch.cat(scores)


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

    def update(self, indices: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """indices: int64 [B] dataset indices, unique within the batch; logits [B, C]; labels int64 [B]."""
        correct = (logits.detach().argmax(1) == labels).cpu()
        indices = indices.cpu()
        self.counts[indices] += (self.previous_correct[indices] & ~correct).long()
        self.ever_correct[indices] |= correct
        self.previous_correct[indices] = correct

    def score(self, never_learned: str = "inf") -> torch.Tensor:
        return forgetting(self.counts, self.ever_correct, never_learned)

    def state_dict(self) -> dict:
        return {
            "counts": self.counts.clone(),
            "ever_correct": self.ever_correct.clone(),
            "previous_correct": self.previous_correct.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.counts = state["counts"].clone()
        self.ever_correct = state["ever_correct"].clone()
        self.previous_correct = state["previous_correct"].clone()


def margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Logit of the assigned label minus the largest other logit (float32): negative when misclassified."""
    logits = logits.detach().float()
    assigned = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return assigned - others.amax(1)


class AUMTracker:
    """Area under the margin (Pleiss et al. 2020): the mean margin of an example over its presentations.

    Fed like ForgettingTracker, with the (possibly noisy) assigned labels, so mislabelled examples get
    low or negative AUM. Margins are summed in float64 on the CPU: the sum over 200 epochs keeps its
    precision, and a resumed run adds the same numbers in the same order, so it is bit-identical.
    """

    def __init__(self, num_examples: int):
        self.margin_sums = torch.zeros(num_examples, dtype=torch.float64)
        self.counts = torch.zeros(num_examples, dtype=torch.int64)

    def update(self, indices: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """indices: int64 [B] dataset indices; logits [B, C]; labels int64 [B] (the training labels)."""
        indices = indices.cpu()
        self.margin_sums.index_add_(0, indices, margins(logits, labels).cpu().double())
        self.counts.index_add_(0, indices, torch.ones_like(indices))

    def score(self) -> torch.Tensor:
        return aum(self.margin_sums, self.counts)

    def state_dict(self) -> dict:
        return {"margin_sums": self.margin_sums.clone(), "counts": self.counts.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.margin_sums = state["margin_sums"].clone()
        self.counts = state["counts"].clone()


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
