"""Slow, obvious reference implementations for the tests and the benchmarks: the tests check the
library against them and the benchmarks time it against them. One example, one logit or one model at
a time, with plain autograd; nothing in the library itself uses them, and they import only torch."""

import copy

import torch
import torch.nn.functional as F


def grand_loop(model, images, labels):
    """One example at a time: backward, then the norm over every trainable parameter's .grad."""
    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    norms = []
    for x, y in zip(images, labels):
        model.zero_grad()
        F.cross_entropy(model(x[None]), y[None]).backward()
        norms.append(torch.sqrt(sum((p.grad**2).sum() for p in params)))
    model.zero_grad()
    model.train(was_training)
    return torch.stack(norms).detach()


def gram_loop(model, images):
    """NTK Gram matrix, one logit at a time: autograd.grad of logit[b, c] w.r.t. every trainable parameter."""
    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for x in images:
        logits = model(x[None])[0]
        for c in range(len(logits)):
            grads = torch.autograd.grad(logits[c], params, retain_graph=True)
            rows.append(torch.cat([g.flatten() for g in grads]))
    model.train(was_training)
    jacobian = torch.stack(rows).double()
    return jacobian @ jacobian.T


def ntk_velocity_loop(model_before, model_after, images, block_order, block_size, blocks):
    """Cosine distance of the loop Gram matrices of each block at the two checkpoints."""
    velocities = []
    for k in blocks:
        x = images[block_order[k * block_size : (k + 1) * block_size]]
        a, b = gram_loop(model_before, x).flatten(), gram_loop(model_after, x).flatten()
        velocities.append(1 - (a @ b / (a.norm() * b.norm())).item())
    return torch.tensor(velocities)


def error_loop(model, images, labels):
    """Error rate, one example at a time."""
    model.eval()
    with torch.no_grad():
        wrong = sum(int(model(x[None]).argmax(1).item() != y.item()) for x, y in zip(images, labels))
    return wrong / len(images)


def interpolated_by_hand(model_a, model_b, alpha):
    """A new model with alpha * a + (1 - alpha) * b in every floating-point parameter and buffer."""
    model = copy.deepcopy(model_a)
    with torch.no_grad():
        pairs = list(zip(model.parameters(), model_b.parameters())) + list(zip(model.buffers(), model_b.buffers()))
        for mine, theirs in pairs:
            if mine.is_floating_point():
                mine.copy_(alpha * mine + (1 - alpha) * theirs)
    return model


def error_barrier_loop(model_a, model_b, images, labels, alphas):
    """Error barrier from hand-built interpolated models, evaluated one example at a time."""
    error_a, error_b = error_loop(model_a, images, labels), error_loop(model_b, images, labels)
    return max(
        error_loop(interpolated_by_hand(model_a, model_b, alpha), images, labels)
        - (alpha * error_a + (1 - alpha) * error_b)
        for alpha in alphas
    )
