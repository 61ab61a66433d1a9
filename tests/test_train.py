import copy
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from datadiet import data as datadiet_data, resume, train as train_module
from datadiet.models import init_model
from datadiet.recipe import run_seeds, total_steps
from datadiet.scores import AUMTracker, ForgettingTracker
from datadiet.train import Callback, Hooks, TrainConfig, TrainSet, train


def synthetic_set(n=96, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    images[torch.arange(n), labels] = 255  # a learnable signal: the label's channel is bright
    return TrainSet(images, labels, torch.full((3,), 0.5), torch.full((3,), 0.25))


CFG = TrainConfig(epochs=3, batch_size=32)


class Record(Callback):
    def __init__(self, stop_at=None):
        self.epochs, self.steps, self.lrs, self.states, self.stop_at = [], [], [], {}, stop_at
        self.starts = []

    def on_train_start(self, step):
        self.starts.append((step, len(self.epochs)))

    def on_epoch_end(self, epoch, step, metrics):
        self.epochs.append(epoch)
        self.steps.append(step)
        self.lrs.append(metrics["lr"])
        if epoch == self.stop_at:
            raise KeyboardInterrupt("preempted")

    def on_state(self, epoch, state):
        self.states[epoch] = state


class Losses(Callback):
    """The train loss of every report, appended to `seen`."""

    def __init__(self, seen):
        self.seen = seen

    def on_epoch_end(self, epoch, step, metrics):
        self.seen.append(metrics["train_loss"])


SEEDS = run_seeds(0)


def run(
    state_path=None,
    callbacks=(),
    cfg=CFG,
    data_seed=SEEDS["data"],
    model_seed=SEEDS["model"],
    start_state=None,
    spawn_epochs=(),
    trackers=("forgetting", "aum"),
    arch="resnet18",
    state_every_s=0,
):
    torch.set_num_threads(1)
    data = synthetic_set()
    model = init_model(arch, 3, 2, model_seed)
    kinds = {"forgetting": ForgettingTracker, "aum": AUMTracker}
    made = train(
        model,
        data,
        cfg,
        data_seed,
        total_steps(cfg, 96, 96),
        Hooks(tuple(callbacks), spawn_epochs=spawn_epochs, state_path=state_path, state_every_s=state_every_s),
        trackers={name: kinds[name](96) for name in trackers},
        start_state=start_state,
    )
    return model, made


def assert_same_weights(a, b):
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def assert_same_state(a, b, path="state"):
    """torch.equal on every tensor of two nested state dicts, == on everything else."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_same_state(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    else:
        assert a == b, path


def test_training_is_deterministic_for_a_seed():
    (a, ta), (b, tb) = run(), run()
    assert_same_weights(a, b)
    assert torch.equal(ta["forgetting"].counts, tb["forgetting"].counts)
    assert torch.equal(ta["aum"].score(), tb["aum"].score())


def test_trackers_see_every_step():
    _, made = run()
    assert made["aum"].counts.sum().item() == total_steps(CFG, 96, 96) * CFG.batch_size
    assert torch.isfinite(made["aum"].score()).all()  # 96 examples, 3 full batches: all presented
    assert run(trackers=())[1] == {}


def test_resumed_run_ends_with_the_same_weights_and_tracker_scores(tmp_path):
    reference, ref_trackers = run()
    state = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        run(state, [Record(stop_at=2)])  # dies after epoch 2; the last saved state is epoch 1
    record = Record()
    resumed, trackers = run(state, [record])
    assert record.epochs == [2, 3]  # really resumed, did not start over
    assert_same_weights(reference, resumed)
    assert torch.equal(ref_trackers["forgetting"].counts, trackers["forgetting"].counts)
    assert torch.equal(ref_trackers["forgetting"].ever_correct, trackers["forgetting"].ever_correct)
    assert torch.equal(ref_trackers["aum"].margin_sums, trackers["aum"].margin_sums)
    assert torch.equal(ref_trackers["aum"].score(), trackers["aum"].score())


# The proxy's recipe (config/proxy.yaml) on the synthetic set: every piece that carries state or shapes a step.
PROXY = TrainConfig(
    epochs=3,
    batch_size=32,
    lr=1.5,
    momentum=0.85,
    weight_decay=0.00133,
    schedule="one_cycle",
    label_smoothing=0.2,
    bias_lr_scale=64,
    lookahead=True,
    pad=2,
    tta=True,
)


def test_a_resumed_proxy_run_ends_with_the_same_weights_lookahead_and_schedule(tmp_path):
    reference, _ = run(cfg=PROXY, arch="airbench")
    state = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        run(state, [Record(stop_at=2)], cfg=PROXY, arch="airbench")  # saved at step 3; Lookahead pulls at step 5
    record = Record()
    resumed, _ = run(state, [record], cfg=PROXY, arch="airbench")
    assert record.epochs == [2, 3]
    assert_same_weights(reference, resumed)
    assert not torch.equal(reference.whiten.weight, torch.zeros_like(reference.whiten.weight))  # fitted


AIRBENCH94 = replace(PROXY, flip="alternate", whiten_bias_epochs=1, tta="translate")  # the pieces airbench94 adds


def test_a_resumed_run_with_alternating_flips_and_a_frozen_whitening_bias_ends_with_the_same_weights(tmp_path):
    reference, _ = run(cfg=AIRBENCH94, arch="airbench")
    state = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        run(state, [Record(stop_at=2)], cfg=AIRBENCH94, arch="airbench")
    resumed, _ = run(state, [Record()], cfg=AIRBENCH94, arch="airbench")
    assert_same_weights(reference, resumed)
    random_flips, _ = run(cfg=replace(AIRBENCH94, flip="random"), arch="airbench")
    assert not torch.equal(reference.fc.weight, random_flips.fc.weight)


class Whitening(Callback):
    """The whitening bias after every epoch, and whether it was training then."""

    def __init__(self, model):
        self.model, self.biases, self.trained = model, [], []

    def on_epoch_end(self, epoch, step, metrics):
        self.biases.append(self.model.whiten.bias.detach().clone())
        self.trained.append(self.model.whiten.bias.requires_grad)


@pytest.mark.parametrize("epochs", [None, 1])
def test_the_whitening_bias_trains_for_whiten_bias_epochs_then_stays_while_the_rest_trains_on(epochs):
    torch.set_num_threads(1)
    data, cfg = synthetic_set(), replace(PROXY, whiten_bias_epochs=epochs, lookahead=False)
    model = init_model("airbench", 3, 2, 0)
    seen, fc = Whitening(model), []
    fc_after = type("FC", (Callback,), {"on_epoch_end": lambda self, *a: fc.append(model.fc.weight.detach().clone())})
    train(model, data, cfg, 0, total_steps(cfg, 96, 96), Hooks((seen, fc_after())))
    assert seen.trained == [True, epochs is None, epochs is None]
    assert not torch.equal(seen.biases[0], seen.biases[1]) if epochs is None else torch.equal(*seen.biases[1:])
    assert not torch.equal(fc[1], fc[2])  # the rest of the network still trains
    assert model.whiten.bias.requires_grad  # given back to scores that take every layer's gradient


def test_alternating_flips_mirror_each_example_once_in_every_two_epochs():
    """Recorded inputs of three epochs without translation: an example's first flip is drawn from the
    data seed, and the next epoch shows the other side, the one after the first side again."""
    torch.set_num_threads(1)
    data = synthetic_set(n=64)
    cfg = replace(PROXY, flip="alternate", pad=0, lookahead=False, batch_size=16)
    model, inputs = init_model("airbench", 3, 2, 0), []

    def recording(x):
        inputs.append(x.clone())
        return model(x)

    train_module._fit_to_the_data(model, data)
    state = resume.fresh_state(model, cfg, 12, 7, {})
    flips = train_module.first_flips(state.generator, 64)
    orders = []
    for _ in range(3):
        generator = torch.Generator().set_state(state.generator.get_state())
        orders.append(torch.randperm(64, generator=generator))  # the order train_epoch draws next
        train_module.train_epoch(state, recording, data, cfg, 12, False, train_module.Sums("cpu"), flips)
        state.epoch += 1
    plain = datadiet_data.normalize(data.images, data.mean, data.std, model.memory_format)
    for epoch, order in enumerate(orders):
        seen = torch.cat(inputs[4 * epoch : 4 * epoch + 4])
        mirrored = torch.tensor([torch.equal(seen[i], plain[order[i]].flip(-1)) for i in range(64)])
        as_is = torch.tensor([torch.equal(seen[i], plain[order[i]]) for i in range(64)])
        assert torch.equal(mirrored, ~as_is)
        assert torch.equal(mirrored, flips[order] ^ (epoch % 2 == 1))
    assert 16 < int(flips.sum()) < 48  # drawn, not all one side
    assert torch.equal(flips, train_module.first_flips(torch.Generator().manual_seed(7), 64))  # from the seed


def test_translated_test_time_views_average_as_airbench_level_2():
    """Against each image's six views built one by one: the image and its mirror weigh 1/4 each, the
    mirrored and plain 1-pixel shifts up-left and down-right (reflect padded) 1/8 each."""
    model = init_model("airbench", 3, 2, 0).eval()
    train_module._fit_to_the_data(model, synthetic_set())
    x = torch.randn(5, 3, 32, 32)

    def shifted(image, dy, dx):
        padded = torch.nn.functional.pad(image[None], (1, 1, 1, 1), mode="reflect")[0]
        return padded[:, 1 + dy : 33 + dy, 1 + dx : 33 + dx]

    with torch.no_grad():
        for image, got in zip(x, train_module.tta_logits(model, x, "translate")):
            views = [(image, 1 / 4), (shifted(image, -1, -1), 1 / 8), (shifted(image, 1, 1), 1 / 8)]
            want = sum(w * (model(v[None]) + model(v.flip(-1)[None])) for v, w in views)
            torch.testing.assert_close(got, want[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="tta must be one of"):
        train_module.tta_logits(model, x, "mirror")


def test_the_one_cycle_schedule_rises_then_falls_and_batchnorm_trains_faster_with_the_same_decay():
    from datadiet.recipe import lr_schedule, parameter_groups

    model = init_model("airbench", 3, 2, 0)
    optimizer = torch.optim.SGD(parameter_groups(model, PROXY), lr=PROXY.lr, weight_decay=PROXY.weight_decay)
    others, norms = optimizer.param_groups
    assert norms["lr"] == 64 * 1.5 and norms["weight_decay"] * norms["lr"] == pytest.approx(0.00133 * 1.5)
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {id(p) for p in norms["params"]} == {id(m.bias) for m in batchnorms}  # their scales are frozen
    assert not any(p is model.whiten.weight for p in others["params"])  # fitted to the data, never trained
    schedule, lrs = lr_schedule(optimizer, PROXY, 100), []
    for _ in range(100):
        lrs.append(others["lr"])
        optimizer.step()
        schedule.step()
    peak = lrs.index(max(lrs))
    assert lrs[0] == pytest.approx(0.2 * 1.5) and max(lrs) == pytest.approx(1.5, rel=0.01) and 20 <= peak <= 24
    assert lrs[-1] == pytest.approx(0.07 * 1.5, rel=0.01)
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1 : peak + 1])) and all(
        a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :])
    )


def test_test_time_flip_averages_the_logits_of_each_image_and_its_mirror():
    from datadiet import data as datadiet_data
    from datadiet.train import evaluate

    data = synthetic_set()
    model = init_model("resnet18", 3, 2, 0).eval()
    x = datadiet_data.normalize(data.images, data.mean, data.std, model.memory_format)
    with torch.no_grad():
        logits = (model(x) + model(x.flip(-1))) / 2
    flipped = evaluate(model, data.images, data.labels, data.mean, data.std, tta=True)
    assert flipped["accuracy"] == pytest.approx((logits.argmax(1) == data.labels).float().mean().item())
    assert flipped["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, data.labels).item())
    assert flipped["loss"] != evaluate(model, data.images, data.labels, data.mean, data.std)["loss"]


def test_on_train_start_comes_once_before_the_first_step_with_the_step_the_run_starts_from(tmp_path):
    fresh = Record()
    run(callbacks=[fresh])
    assert fresh.starts == [(0, 0)]  # (step, epochs reported before it)
    state = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        run(state, [Record(stop_at=2)])  # the saved state is epoch 1, step 3
    resumed = Record()
    run(state, [resumed])
    assert resumed.starts == [(3, 0)]


def train_subset(state_path=None, callbacks=(), report_every=None):
    """64 of the 96 examples (2 steps an epoch) for the 9 steps of 3 full-data epochs."""
    torch.set_num_threads(1)
    data = synthetic_set()
    subset = TrainSet(data.images[:64], data.labels[:64], data.mean, data.std)
    model = init_model("resnet18", 3, 2, 0)
    made = train(
        model,
        subset,
        CFG,
        1,
        total_steps(CFG, 96, 64),
        Hooks(tuple(callbacks), test=(data.images, data.labels), report_every=report_every, state_path=state_path),
        trackers={"forgetting": ForgettingTracker(64)},
    )
    return model, made


def test_a_subset_run_reports_once_per_full_data_epoch_and_resumes_from_a_report(tmp_path):
    every_epoch, per_full_epoch = Record(), Record()
    reference, ref_trackers = train_subset(callbacks=[every_epoch])
    model, _ = train_subset(callbacks=[per_full_epoch], report_every=3)
    assert every_epoch.epochs == [1, 2, 3, 4, 5]  # 2 + 2 + 2 + 2 + 1 steps
    assert per_full_epoch.epochs == [2, 3, 5] and per_full_epoch.steps == [4, 6, 9]  # after steps 3, 6 and the last
    assert_same_weights(reference, model)  # reporting less changes nothing of the training
    state = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        train_subset(state, [Record(stop_at=3)], report_every=3)  # the saved state is the report of epoch 2
    resumed_record = Record()
    resumed, trackers = train_subset(state, [resumed_record], report_every=3)
    assert resumed_record.epochs == [3, 5]
    assert_same_weights(reference, resumed)
    assert torch.equal(ref_trackers["forgetting"].counts, trackers["forgetting"].counts)


class Clock(Callback):
    """The resume file's clock, `seconds` later at every report; and the epoch the file holds as each
    report starts (None: no file yet)."""

    def __init__(self, state_path, seconds):
        self.now, self.state_path, self.seconds, self.held = 0.0, state_path, seconds, []

    def monotonic(self):
        return self.now

    def on_epoch_end(self, epoch, step, metrics):
        self.now += self.seconds
        self.held.append(torch.load(self.state_path, weights_only=False)["epoch"] if self.state_path.exists() else None)


def test_the_state_is_saved_once_its_interval_has_passed_at_the_end_and_on_a_stop(tmp_path, monkeypatch):
    cfg, state = TrainConfig(epochs=6, batch_size=32), tmp_path / "state.pt"
    clock = Clock(state, seconds=400)  # a report every 400 s, a save due every 1000 s
    monkeypatch.setattr(train_module, "time", SimpleNamespace(monotonic=clock.monotonic))
    reference, ref_trackers = run(state, [clock], cfg=cfg, state_every_s=1000)
    assert clock.held == [None, None, None, 3, 3, 3]  # written at 1200 s (epoch 3), not at every report
    assert torch.load(state, weights_only=False)["epoch"] == 6  # and at the end
    state.unlink()
    clock = Clock(state, seconds=400)
    monkeypatch.setattr(train_module, "time", SimpleNamespace(monotonic=clock.monotonic))
    with pytest.raises(KeyboardInterrupt):
        run(state, [clock, Record(stop_at=5)], cfg=cfg, state_every_s=1000)  # a stop inside epoch 5's report
    assert clock.held == [None, None, None, 3, 3]
    assert torch.load(state, weights_only=False)["epoch"] == 4  # the stop saved the last report's state
    record = Record()
    resumed, trackers = run(state, [record], cfg=cfg, state_every_s=1000)
    assert record.epochs == [5, 6]
    assert_same_weights(reference, resumed)
    assert torch.equal(ref_trackers["forgetting"].counts, trackers["forgetting"].counts)
    assert torch.equal(ref_trackers["aum"].score(), trackers["aum"].score())


def test_a_state_with_other_trackers_is_not_resumed(tmp_path):
    state = tmp_path / "state.pt"
    run(state, trackers=("forgetting",))
    record = Record()
    run(state, [record])
    assert record.epochs == [1, 2, 3]


def test_a_state_from_other_settings_is_not_resumed(tmp_path):
    state = tmp_path / "state.pt"
    run(state, cfg=TrainConfig(epochs=3, batch_size=32, lr=0.05))
    record = Record()
    run(state, [record])
    assert record.epochs == [1, 2, 3]


def test_step_budget_and_learning_rate_drops():
    cfg = TrainConfig(epochs=10, batch_size=32)
    assert total_steps(cfg, full_size=100, train_size=50) == 10 * 3  # pruned: as many steps as full data
    assert total_steps(TrainConfig(epochs=10, batch_size=32, budget="epochs"), 100, 50) == 10 * 1
    with pytest.raises(ValueError, match="fewer than one batch"):
        total_steps(cfg, 100, 20)
    record = Record()
    cfg = TrainConfig(epochs=10, batch_size=32)
    run(callbacks=[record], cfg=cfg)  # 30 steps, 3 an epoch: x0.2 after steps 9, 18 and 24 (30/60/80%)
    # the lr an epoch reports is the one the next step will use
    assert record.lrs == pytest.approx([0.1] * 2 + [0.02] * 3 + [0.004] * 2 + [0.0008] * 3)


def test_seeds_follow_the_official_code():
    assert run_seeds(0) == {"model": 42, "data": 4242, "subset": 4426}
    assert run_seeds(2) == {"model": 42 + 2 * 424242, "data": 4242 + 2 * 424242, "subset": 4426 + 2 * 424242}


def test_a_diverging_loss_stops_with_a_clear_error():
    data = synthetic_set()
    data.std = torch.zeros(3)  # every input becomes inf
    model = init_model("resnet18", 3, 2, 0)
    with pytest.raises(FloatingPointError, match="training diverged"):
        train(model, data, CFG, 0, 3)


def test_the_state_handed_to_on_state_is_the_state_saved_for_resume(tmp_path):
    state_path = tmp_path / "state.pt"
    record = Record(stop_at=2)  # stop right after epoch 2's hooks: the resume file still holds epoch 1
    with pytest.raises(KeyboardInterrupt):
        run(state_path, [record], spawn_epochs=(0, 1, 2))
    assert sorted(record.states) == [0, 1, 2]
    saved = torch.load(state_path, weights_only=False)
    handed = record.states[1]
    assert handed.keys() == {"model", "optimizer", "schedule", "epoch", "step"}
    assert handed["epoch"] == 1 and handed["step"] == 3
    assert_same_state(handed, {k: saved[k] for k in handed})
    # copies, not views: training went on after epoch 1 without touching them
    assert not torch.equal(handed["model"]["fc.weight"], record.states[2]["model"]["fc.weight"])
    assert record.states[0]["step"] == 0 and record.states[0]["optimizer"]["state"] == {}


def spawn(epoch):
    record = Record()
    parent, _ = run(callbacks=[record], spawn_epochs=(epoch,))
    return parent, record


def test_a_child_from_the_epoch_0_state_is_the_fresh_run():
    parent, record = spawn(0)
    # another model init, overwritten by the start state; the same data seed as the parent
    child, _ = run(model_seed=7, start_state=record.states[0])
    assert_same_weights(parent, child)


def test_children_with_other_data_orders_continue_the_parent_and_diverge():
    parent, record = spawn(1)
    before = copy.deepcopy(record.states[1])
    children = [Record(), Record()]
    a, _ = run(callbacks=[children[0]], data_seed=1, model_seed=7, start_state=record.states[1])
    assert_same_state(record.states[1], before)  # a child leaves its start state as it was
    b, _ = run(callbacks=[children[1]], data_seed=2, model_seed=8, start_state=record.states[1])
    for child in children:
        assert child.epochs == [2, 3] and child.steps == [6, 9] == record.steps[1:]
        assert child.lrs == record.lrs[1:]  # the parent's schedule goes on
    assert not torch.equal(a.state_dict()["fc.weight"], b.state_dict()["fc.weight"])
    # from the spawn on, the child is not the parent: its data order starts afresh
    assert not torch.equal(a.state_dict()["fc.weight"], parent.state_dict()["fc.weight"])


def test_a_killed_child_resumes_bit_identically(tmp_path):
    _, record = spawn(1)
    start = record.states[1]
    reference, ref_trackers = run(data_seed=1, start_state=start)
    state_path = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        run(state_path, [Record(stop_at=3)], data_seed=1, start_state=start)  # the saved state is epoch 2
    resumed_record = Record()
    resumed, trackers = run(state_path, [resumed_record], data_seed=1, start_state=start)
    assert resumed_record.epochs == [3]
    assert_same_weights(reference, resumed)
    assert torch.equal(ref_trackers["aum"].score(), trackers["aum"].score())
    assert torch.equal(ref_trackers["forgetting"].counts, trackers["forgetting"].counts)
    # the trackers start fresh at the spawn: two epochs of three batches of 32
    assert trackers["aum"].counts.sum().item() == 2 * 3 * 32


def test_a_state_of_another_run_is_not_resumed_by_a_child(tmp_path):
    state_path = tmp_path / "state.pt"
    _, record = spawn(1)
    run(state_path, data_seed=1)  # a complete parent-like run with the child's data seed
    child = Record()
    run(state_path, [child], data_seed=1, start_state=record.states[1])
    assert child.epochs == [2, 3]  # trained, not taken for finished
    # a spawn point of another parent at the same epoch and step is not mistaken either
    other = Record()
    run(callbacks=[other], model_seed=5, spawn_epochs=(1,))
    again = Record()
    run(state_path, [again], data_seed=1, start_state=other.states[1])
    assert again.epochs == [2, 3]


def test_a_start_state_of_another_schedule_is_rejected():
    _, record = spawn(1)
    with pytest.raises(ValueError, match="another optimizer, schedule or step budget"):
        run(cfg=TrainConfig(epochs=4, batch_size=32), start_state=record.states[1])
    with pytest.raises(ValueError, match="another optimizer, schedule or step budget"):
        run(cfg=TrainConfig(epochs=3, batch_size=32, weight_decay=0.0), start_state=record.states[1])


def test_bf16_autocast_trains_float32_weights_and_changes_the_arithmetic():
    # precision: bf16 on the CPU (which has bf16 autocast too), as on a GPU.
    torch.set_num_threads(1)
    models = {}
    for autocast in (False, True):
        cfg = TrainConfig(epochs=6, batch_size=32, precision="bf16" if autocast else "fp32")
        model = init_model("resnet18", 3, 8, run_seeds(0)["model"])
        seen = []
        train(
            model,
            synthetic_set(),
            cfg,
            run_seeds(0)["data"],
            total_steps(cfg, 96, 96),
            Hooks((Losses(seen),)),
        )
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert seen[-1] < seen[0]  # it learns the bright-channel signal
        models[autocast] = model
    assert not torch.equal(models[False].fc.weight, models[True].fc.weight)


class Checkpoints(Callback):
    def __init__(self):
        self.saved = {}

    def on_checkpoint(self, epoch, model):
        self.saved[epoch] = copy.deepcopy(model.state_dict())


def test_a_run_stopped_at_an_epoch_has_the_whole_runs_checkpoint_there():
    """A size-sweep scoring run stops at its score's epoch: the schedule is still the whole run's,
    so its checkpoint is the one the whole run passes through (and it trains no further)."""
    torch.set_num_threads(1)
    made = {}
    for stop in (None, 1):
        data, saved, record = synthetic_set(), Checkpoints(), Record()
        model = init_model("resnet18", 3, 2, SEEDS["model"])
        steps = total_steps(CFG, 96, 96)
        train(model, data, CFG, SEEDS["data"], steps, Hooks((saved, record), checkpoint_epochs=(1,)), stop_epoch=stop)
        made[stop] = (saved.saved[1], record.epochs, record.steps)
    assert_same_state(made[None][0], made[1][0])
    assert made[1][1:] == ([1], [3]) and made[None][1:] == ([1, 2, 3], [3, 6, 9])


def host_reads(steps, report_every, device="cpu"):
    """`.item()`-style reads of a tensor by the host (aten::_local_scalar_dense, a GPU sync) over a run
    of `steps` steps with trackers, under torch's profiler."""
    torch.set_num_threads(1)
    data = synthetic_set(n=320)
    model = init_model("resnet18", 3, 2, 0).to(device)
    trackers = {"forgetting": ForgettingTracker(320), "aum": AUMTracker(320)}
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        train(model, data, TrainConfig(epochs=2, batch_size=32), 0, steps, Hooks(report_every=report_every), trackers)
    return sum(event.name == "aten::_local_scalar_dense" for event in profiler.events())


def test_a_training_step_never_reads_a_tensor_on_the_host_only_a_report_does():
    # 20 steps, a report every 10: the loss, the accuracy and the finite check are read twice in all.
    # Before the loop kept its sums on the device, this was 3 reads a step (60).
    assert host_reads(20, 10) == 2 * 3
    assert host_reads(20, 20) == 3  # reads grow with reports, not steps


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_a_training_step_never_synchronises():
    from datadiet.tools.gpu_check import steps_without_a_sync

    data = synthetic_set(n=320)
    on_gpu = TrainSet(*(t.cuda() for t in (data.images, data.labels, data.mean, data.std)))
    model = init_model("resnet18", 3, 8, 0).cuda()
    assert steps_without_a_sync(model, on_gpu, TrainConfig(epochs=2, batch_size=32), 9) == 9


def test_a_compiled_run_trains_as_the_eager_one():
    """`compile: true` (gpu_check's, for GPUs) runs the same steps through torch.compile's kernels:
    the same losses to float rounding, on the CPU too (at a gentle lr: lr 1.5 on 96 images amplifies rounding)."""
    losses = {}
    for compiled in (False, True):
        losses[compiled] = []
        run(
            cfg=replace(PROXY, compile=compiled, lr=0.2),
            arch="airbench",
            callbacks=[Losses(losses[compiled])],
            trackers=(),
        )
    assert len(losses[True]) == 3 and losses[True] == pytest.approx(losses[False], abs=1e-2)
    assert losses[True][-1] < losses[True][0]


def test_a_compiled_run_whose_compiler_fails_trains_eagerly_to_the_same_weights(monkeypatch, tmp_path, capsys):
    # No working C++ compiler, as on a slim image: Inductor fails at the first forward pass.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", (None, "/bin/false"))
    monkeypatch.setattr(train_module.CompiledOrEager, "failed", None)
    torch._dynamo.reset()
    eager = run(trackers=(), cfg=CFG)[0]
    compiled = run(trackers=(), cfg=replace(CFG, compile=True))[0]
    said = [line for line in capsys.readouterr().out.splitlines() if "torch.compile failed" in line]
    assert len(said) == 1 and "training eagerly" in said[0] and "compiler" in said[0].lower()
    assert_same_weights(eager, compiled)
    # A second compiled run in the process does not try again, and says nothing more.
    run(trackers=(), cfg=replace(CFG, compile=True))
    assert "torch.compile failed" not in capsys.readouterr().out
