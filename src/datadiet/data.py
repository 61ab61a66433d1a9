"""Datasets as uint8 tensors: decode once, cache, then subset, normalise and augment on tensors.

Training reads batches straight from these tensors (no DataLoader, no PIL): on 2 CPU cores the
workers of a DataLoader compete with training for the cores, see docs/performance-notes.md.
"""

import hashlib
import json
import os
import tarfile
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch

# torchvision is imported inside the decoding functions only: importing it costs about 2 s
# (it loads torch._dynamo), and every training and scoring job only needs the tensor functions.

SPLITS = ("train", "test")
# Bump when decoding changes, so that caches written by older code are not reused.
CACHE_FORMAT = 1


class DataError(ValueError):
    """Bad input data or a bad data spec; the message names the offending path, file or member."""


@dataclass
class Split:
    images: torch.Tensor  # uint8 [N, 3, H, W], contiguous NCHW
    labels: torch.Tensor  # int64 [N]
    classes: list[str]


def load(spec: dict, cache_dir) -> dict[str, Split]:
    """{"train": Split, "test": Split} for a data spec.

    spec: source "jpeg_tar" (path: a tar.gz of <top>/{train,test}/<class>/<file>), "imagefolder"
    (path: a directory holding train/ and test/ ImageFolder trees) or "torchvision" (path: the root
    given to torchvision.datasets.<name>, with download=spec.get("download", True)); name "cifar10" or
    "cifar100"; image_size (default 32): other sizes are resized, grayscale becomes RGB.

    jpeg_tar and imagefolder sources are decoded once and cached in cache_dir under a key derived from
    the spec and the source's contents. torchvision sources are not cached: torchvision already keeps
    the decoded arrays on disk, and loading them is as fast as loading our cache.
    """
    source, size = spec.get("source"), int(spec.get("image_size", 32))
    if "path" not in spec:
        raise DataError(f"the data spec has no 'path': {spec}")
    path = Path(spec["path"])
    if source == "torchvision":
        return _load_torchvision(spec.get("name"), path, spec.get("download", True), size)
    readers = {"jpeg_tar": (_read_tar, _file_sha256), "imagefolder": (_read_folder, _folder_listing)}
    if source not in readers:
        raise DataError(f"unknown data source {source!r}: expected jpeg_tar, imagefolder or torchvision")
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    read, fingerprint = readers[source]
    name = spec.get("name", "data")
    key = json.dumps([CACHE_FORMAT, source, name, size, fingerprint(path)])
    cache = Path(cache_dir) / f"{name}-{source}-{size}px-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"
    if cache.exists():
        return _load_cache(cache)
    splits = _assemble(read(path), path, size)
    _save_cache(splits, cache)
    return splits


def _read_tar(path: Path) -> dict[str, list[tuple[str, str, bytes]]]:
    """(class, member name, bytes) of every image member <top>/<split>/<class>/<file> of a tar archive."""
    from torchvision.datasets.folder import IMG_EXTENSIONS
    files = {split: [] for split in SPLITS}
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if not (member.isfile() and member.name.lower().endswith(IMG_EXTENSIONS)):
                    continue
                parts = PurePosixPath(member.name).parts
                if len(parts) < 4 or parts[1] not in SPLITS:
                    raise DataError(f"{path}: member {member.name} is not laid out as "
                                    "<top>/{train,test}/<class>/<file>")
                files[parts[1]].append((parts[2], member.name, tar.extractfile(member).read()))
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"cannot read tar archive {path}: {e}") from None
    return files


def _read_folder(path: Path) -> dict[str, list[tuple[str, str, bytes]]]:
    """(class, file path, bytes) of every image in the ImageFolder trees path/train and path/test."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
    files = {}
    for split in SPLITS:
        try:
            classes, class_to_idx = find_classes(path / split)
            samples = make_dataset(path / split, class_to_idx, extensions=IMG_EXTENSIONS)
        except FileNotFoundError as e:  # no class folders, or a class folder without images
            raise DataError(f"{path / split}: {e}") from None
        files[split] = [(classes[label], file, Path(file).read_bytes()) for file, label in samples]
    return files


def _assemble(files: dict[str, list[tuple[str, str, bytes]]], path: Path, size: int) -> dict[str, Split]:
    """Decode every split, ordered like ImageFolder: by class name, then by file name."""
    splits = {}
    for split in SPLITS:
        if not files[split]:
            raise DataError(f"{path}: the {split} split has no images")
        ordered = sorted(files[split], key=lambda f: (f[0], f[1]))
        classes = sorted({c for c, _, _ in ordered})
        class_to_idx = {c: i for i, c in enumerate(classes)}
        with warnings.catch_warnings():
            # torchvision 0.29 warns on every decode that its codecs are deprecated (in favour of torchcodec).
            warnings.filterwarnings("ignore", "The image decoding and encoding", DeprecationWarning)
            images = torch.stack([_decode(raw, name, size) for _, name, raw in ordered])
        labels = torch.tensor([class_to_idx[c] for c, _, _ in ordered], dtype=torch.int64)
        splits[split] = Split(images, labels, classes)
    if splits["train"].classes != splits["test"].classes:
        only_train = sorted(set(splits["train"].classes) - set(splits["test"].classes))
        only_test = sorted(set(splits["test"].classes) - set(splits["train"].classes))
        raise DataError(f"{path}: train and test have different classes "
                        f"(only in train: {only_train}, only in test: {only_test})")
    return splits


def _decode(raw: bytes, name: str, size: int) -> torch.Tensor:
    """uint8 [3, size, size] from encoded image bytes; grayscale becomes RGB, alpha is dropped."""
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms.v2.functional import resize
    try:
        image = decode_image(torch.frombuffer(bytearray(raw), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError) as e:
        raise DataError(f"cannot decode image {name}: {e}") from None
    if image.shape[-2:] != (size, size):
        image = resize(image, [size, size], antialias=True)
    return image


def _load_torchvision(name, root: Path, download: bool, size: int) -> dict[str, Split]:
    import torchvision
    from torchvision.transforms.v2.functional import resize

    datasets = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}
    if name not in datasets:
        raise DataError(f"unknown torchvision dataset {name!r}: expected one of {sorted(datasets)}")
    if not download and not root.exists():
        raise DataError(f"data path {root} does not exist (and download is off)")
    splits = {}
    for split in SPLITS:
        try:
            dataset = datasets[name](root, train=split == "train", download=download)
        except (RuntimeError, OSError) as e:
            raise DataError(f"cannot load {name} {split} from {root}: {e}") from None
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2)  # stored as NHWC
        if images.shape[-2:] != (size, size):
            images = resize(images, [size, size], antialias=True)
        splits[split] = Split(images.contiguous(), torch.tensor(dataset.targets, dtype=torch.int64),
                              list(dataset.classes))
    return splits


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _folder_listing(path: Path) -> list:
    """Sorted (relative path, size, mtime) of every file below path: changes when any file does."""
    listing = []
    for dirpath, _, filenames in os.walk(path):
        for filename in filenames:
            file = Path(dirpath, filename)
            stat = file.stat()
            listing.append((file.relative_to(path).as_posix(), stat.st_size, stat.st_mtime_ns))
    return sorted(listing)


def _checksum(splits: dict[str, Split]) -> str:
    digest = hashlib.sha256()
    for split in SPLITS:
        for tensor in (splits[split].images, splits[split].labels):
            digest.update(tensor.contiguous().numpy())
    return digest.hexdigest()


def _save_cache(splits: dict[str, Split], cache: Path) -> None:
    """Write through a temporary file and os.replace, so a killed job never leaves half a cache."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CACHE_FORMAT, "classes": splits["train"].classes, "sha256": _checksum(splits)}
    for split in SPLITS:
        payload[f"{split}_images"] = splits[split].images
        payload[f"{split}_labels"] = splits[split].labels
    fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=cache.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, cache)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_cache(cache: Path) -> dict[str, Split]:
    try:
        payload = torch.load(cache, weights_only=True)
        classes = list(payload["classes"])
        splits = {s: Split(payload[f"{s}_images"], payload[f"{s}_labels"], classes) for s in SPLITS}
        intact = payload["sha256"] == _checksum(splits)
    except Exception as e:  # unreadable or truncated file, missing keys
        raise DataError(f"cannot read the data cache {cache} ({e}); delete it to rebuild it") from None
    if not intact:
        raise DataError(f"the data cache {cache} fails its checksum; delete it to rebuild it")
    return splits


def subset_per_class(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Sorted int64 indices of a seeded, class-balanced subset: per_class examples of every class."""
    counts = torch.bincount(labels)
    if (counts < per_class).any():
        small = {c: int(n) for c, n in enumerate(counts) if n < per_class}
        raise DataError(f"cannot take {per_class} examples per class: "
                        f"classes {small} (class: count) have fewer")
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(len(counts)):
        members = (labels == c).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of uint8 images on the 0..1 scale, float32 [3] each."""
    # From a 256-bin histogram per channel: exact, and no float copy of the whole dataset.
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = torch.bincount(images[:, c].flatten().cpu(), minlength=256).double()
        mean = (counts * values).sum() / counts.sum()
        means.append(mean)
        stds.append(((counts * (values - mean) ** 2).sum() / counts.sum()).sqrt())
    return torch.stack(means).float(), torch.stack(stds).float()


def normalize(images: torch.Tensor, mean, std, memory_format=torch.channels_last) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> float32 (x/255 - mean)/std, in the model's memory format (see models)."""
    mean = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    x = images.contiguous(memory_format=memory_format).float()
    return x.div_(255).sub_(mean).div_(std)


def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4,
            crop_per_batch: bool = False) -> torch.Tensor:
    """Reflect-pad by `pad`, random crop back to H x W, random horizontal flip, on a uint8 batch.

    One crop offset per example, or one for the whole batch with crop_per_batch (as the official TF
    code does); flips are per example. All randomness comes from `generator`, so a run is
    reproducible and resumable from the generator state. Padding, crop and flip are folded into one
    gather: each output pixel's source row and column are computed, reflecting indices that fall
    into the padding, so the padded batch is never built.
    """
    n, c, h, w = images.shape
    if pad >= min(h, w):
        raise ValueError(f"reflect padding {pad} must be smaller than the image size {h}x{w}")
    draws = 1 if crop_per_batch else n
    dy = torch.randint(0, 2 * pad + 1, (draws,), generator=generator, device=generator.device)
    dx = torch.randint(0, 2 * pad + 1, (draws,), generator=generator, device=generator.device)
    flip = torch.randint(0, 2, (n,), generator=generator, device=generator.device).bool()
    dy, dx, flip = dy.to(images.device), dx.to(images.device), flip.to(images.device)
    rows = _reflect(dy[:, None] + torch.arange(h, device=images.device) - pad, h)  # [draws, h]
    cols = _reflect(dx[:, None] + torch.arange(w, device=images.device) - pad, w)  # [draws, w]
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # [n, w]
    index = (rows[:, :, None] * w + cols[:, None, :]).expand(n, h, w).reshape(n, 1, h * w)
    return images.reshape(n, c, h * w).gather(2, index.expand(n, c, h * w)).view(n, c, h, w)


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map indices in [-size+1, 2*size-2] into [0, size) as reflect padding does (edge not repeated)."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)
