import pytest
import torch

from datadiet.train import Callback, TrainConfig, TrainSet, init_model, run_seeds, total_steps, train


def synthetic_set(n=96, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    images[torch.arange(n), labels] = 255  # a learnable signal: the label's channel is bright
    return TrainSet(images, labels, torch.full((3,), 0.5), torch.full((3,), 0.25))


CFG = TrainConfig(epochs=3, batch_size=32)


class Record(Callback):
    def __init__(self, stop_at=None):
        self.epochs, self.lrs, self.stop_at = [], [], stop_at

    def on_epoch_end(self, epoch, step, metrics):
        self.epochs.append(epoch)
        self.lrs.append(metrics["lr"])
        if epoch == self.stop_at:
            raise KeyboardInterrupt("preempted")


def run(state_path=None, callbacks=(), cfg=CFG):
    torch.set_num_threads(1)
    data = synthetic_set()
    model = init_model("resnet18", 3, 2, run_seeds(0)["model"])
    tracker = train(model, data, cfg, run_seeds(0)["data"], total_steps(cfg, 96, 96), state_path=state_path,
                    callbacks=callbacks, forgetting=True)
    return model, tracker


def assert_same_weights(a, b):
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_training_is_deterministic_for_a_seed():
    (a, ta), (b, tb) = run(), run()
    assert_same_weights(a, b)
    assert torch.equal(ta.counts, tb.counts)


def test_resumed_run_ends_with_the_same_weights_and_forgetting_counts(tmp_path):
    reference, ref_tracker = run()
    state = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        run(state, [Record(stop_at=2)])  # dies after epoch 2; the last saved state is epoch 1
    record = Record()
    resumed, tracker = run(state, [record])
    assert record.epochs == [2, 3]  # really resumed, did not start over
    assert_same_weights(reference, resumed)
    assert torch.equal(ref_tracker.counts, tracker.counts)
    assert torch.equal(ref_tracker.ever_correct, tracker.ever_correct)


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
