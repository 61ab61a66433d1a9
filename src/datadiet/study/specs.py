"""Every job's spec, built in one place: what a job is (its data, model, schedule, seeds and what it
computes) from the study and the job's wildcards `w`; the rules hand it to `datadiet job <step>
--spec` as JSON. Where a job runs (threads, device, tracking store) is never in it."""

from . import layout, names
from .config import identity

# Keys of a datasets entry that say chosen_by the study uses the data, not chosen_by to read it.
STUDY_KEYS = ("arch", "how_early_keep", "batch_size", "train_size")


def data(study, dataset):
    """How to read a dataset: source, path, subset; a size-sweep subset: its parent's, and `size`."""
    if dataset in study.subsets:
        return {**data(study, study.sweep["dataset"]), "train_per_class": None, "size": study.subsets[dataset]}
    spec = {k: v for k, v in study.datasets[dataset].items() if k not in STUDY_KEYS}
    return {"name": dataset, **spec}


def data_inputs(study, dataset):
    """What preparing a dataset reads: its source file (a torchvision source: the download step's
    marker), and a sweep subset its parent's dataset."""
    spec = data(study, dataset)
    if dataset in study.subsets:  # read from the same source, after its parent has fetched and decoded it
        parent = study.sweep["dataset"]
        return [study.path(layout.DATASET, dataset=parent)] + data_inputs(study, parent)
    if spec["source"] == "torchvision":
        return [study.path(layout.DOWNLOADED, dataset=dataset)]
    return [spec["path"]]


def decode(study, dataset):
    """How prepare_data reads a dataset: the download step has fetched a torchvision source."""
    spec = data(study, dataset)
    return {**spec, "download": False} if spec["source"] == "torchvision" else spec


def training(study, dataset, arch, noise, run, **job):
    """What a training job is: model, schedule and seeds (by run); `job`: what else it needs."""
    return {
        "study": study.name,
        "dataset": dataset,
        "model": {"arch": arch, **study.config["model"]},
        "train": study.train_config(dataset),
        "run": int(run),
        "noise": float(noise),
        **job,
    }


def scoring(study, w, spawn=False):
    """A full-data scoring run: its checkpoints, and for the LMC parent its spawn states."""
    return training(
        study,
        w.dataset,
        w.arch,
        w.noise,
        w.seed,
        checkpoint_epochs=study.checkpoint_epochs,
        spawn_epochs=study.spawn_epochs if spawn else [],
        never_learned=study.config["scores"]["forgetting_never_learned"],
    )


def short_scoring(study, w, epochs):
    """A scoring run trained only up to the last of its checkpoints `epochs` (the step budget and
    schedule of the whole run, cut there: the checkpoints are the whole run's)."""
    return training(study, w.dataset, w.arch, w.noise, w.seed, checkpoint_epochs=epochs, stop_epoch=max(epochs))


def sweep_scoring(study, w):
    """A size-sweep scoring run: trained only up to the checkpoint of the sweep's score."""
    return short_scoring(study, w, [names.Score.parse(study.sweep["score"]).epoch])


def score(study, w, fields):
    """One checkpoint score of a scoring job (`fields`: its output file's, the score)."""
    parsed = names.Score.parse(fields["score"])
    return {
        "dataset": w.dataset,
        "arch": w.arch,
        "kind": parsed.kind,
        "epoch": parsed.epoch,
        "run": int(w.seed),
        "noise": float(w.noise),
        "grand_chunk_size": study.config["scores"]["grand_chunk_size"],
    }


def input_norm(study, w):
    """The input-norm baseline of a dataset's training images: no model, no seed."""
    return {"dataset": w.dataset, "noise": float(w.noise)}


def selection(study, method, keep):
    """The selection spec of `method` at kept fraction `keep` (CCS: beta for that fraction)."""
    ccs = study.config["pruning"]["ccs"]
    beta = ccs["beta"]
    if isinstance(beta, list):
        beta = min(beta, key=lambda entry: abs(entry["kept"] - keep))["beta"]
    return study.method(method).selection({"ccs": {**ccs, "beta": beta}})


def retrain(study, w, fields):
    """One run of a retraining point: its rep's seeds, the subset its method keeps."""
    keep = float(w.keep)
    chosen_by = selection(study, w.method, keep)
    return training(study, w.dataset, w.arch, w.noise, fields["rep"], method=w.method, keep=keep, selection=chosen_by)


def window(study, w, fields):
    """One run of a sliding window: the window that leaves out `left_out` of the set above it."""
    chosen_by = {"kind": "window", "left_out": float(w.left_out)}
    method = names.window_method(w.score)
    return training(
        study, w.dataset, w.arch, w.noise, fields["rep"], method=method, keep=float(w.keep), selection=chosen_by
    )


def child(study, w):
    """An LMC child: the parent run `seed`'s state at the spawn epoch, its own data order (`child`)."""
    return training(study, w.dataset, w.arch, w.noise, w.seed, spawn_epoch=int(w.epoch), child=int(w.child))


def ntk(study, w):
    """NTK velocity of the score-sorted blocks between epoch `epoch` and the next."""
    where = {"dataset": w.dataset, "arch": w.arch, "noise": float(w.noise), "epoch": int(w.epoch)}
    return {**where, **{k: study.ntk[k] for k in ("score", "block_size", "blocks", "chunk_size")}}


def lmc_barrier(study, w):
    """The error barriers of the children of every spawn epoch, on the score's high and low sets."""
    return {
        "dataset": w.dataset,
        "arch": w.arch,
        "noise": float(w.noise),
        "spawn_epochs": study.spawn_epochs,
        # BatchNorm statistics re-estimated in batches of the size the children trained with.
        "bn_batch_size": study.train_config(w.dataset)["batch_size"],
        **{k: study.lmc[k] for k in ("score", "set_size", "alphas", "bn", "bn_images")},
    }


def report(study):
    """The report: the study and its config's identity (what its results were computed with)."""
    return {"study": study.name, "config": identity(study.config)}
