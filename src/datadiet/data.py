"""Datasets as uint8 tensors: read from their source (a JPEG archive, an image folder, torchvision),
decoded once and cached; `tensors` subsets, normalises and augments them.

Training reads batches straight from these tensors (no DataLoader, no PIL): on 2 CPU cores the
workers of a DataLoader compete with training for the cores, see docs/performance.md.
"""

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch

# The tensor operations, here too: the API is datadiet.data.<operation>.
from .tensors import (
    augment as augment,
    channel_stats as channel_stats,
    nested_subset as nested_subset,
    normalize as normalize,
    subset_per_class as subset_per_class,
)

# torchvision is imported inside the decoding functions only: importing it costs about 2 s
# (it loads torch._dynamo), and every training and scoring job only needs the tensor functions.

SPLITS = ("train", "test")
# CINIC-10 (Darlow et al. 2018): ImageFolder trees train/, valid/ and test/ of 90,000 32x32 PNGs each.
CINIC10_URL = "https://datashare.is.ed.ac.uk/bitstream/handle/10283/3192/CINIC-10.tar.gz"
CINIC10_MD5 = "6ee4d0c996905fe93221de577967a372"
CINIC10_FOLDERS = ("train", "valid", "test")
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
    given to torchvision.datasets.<name>, with download=spec.get("download", True)); name "cifar10",
    "cifar100" or, for torchvision only, "cinic10" (see below); image_size (default 32): other sizes are
    resized, grayscale becomes RGB. merge_valid (default false; jpeg_tar and imagefolder): the training
    split is train/ followed by valid/, a third tree next to them with the same classes.

    torchvision "cinic10": torchvision has no CINIC-10 class, so the official archive is downloaded and
    extracted into path (unless path already holds train/, valid/ and test/), and read as an imagefolder
    source with merge_valid always on: 180,000 training images (train then valid), 90,000 test images.

    jpeg_tar, imagefolder and cinic10 sources are decoded once and cached in cache_dir under a key
    derived from the spec and the source's contents. The other torchvision sources are not cached:
    torchvision already keeps the decoded arrays on disk, and loading them is as fast as loading our cache.
    """
    source, size = spec.get("source"), int(spec.get("image_size", 32))
    if "path" not in spec:
        raise DataError(f"the data spec has no 'path': {spec}")
    path, name, merge_valid = Path(spec["path"]), spec.get("name", "data"), spec.get("merge_valid", False)
    if not isinstance(merge_valid, bool):
        raise DataError(f"merge_valid must be true or false, not {merge_valid!r}")
    if source == "torchvision" and name == "cinic10":
        _fetch_cinic10(path, spec.get("download", True))
        read, fingerprint, merge_valid = _read_folder, _folder_listing, True
    elif source == "torchvision":
        if merge_valid:
            raise DataError(
                f"merge_valid applies to jpeg_tar and imagefolder sources "
                f"(and is implied by cinic10), not to torchvision {name!r}"
            )
        return _load_torchvision(spec.get("name"), path, spec.get("download", True), size)
    else:
        readers = {"jpeg_tar": (_read_tar, _file_sha256), "imagefolder": (_read_folder, _folder_listing)}
        if source not in readers:
            raise DataError(f"unknown data source {source!r}: expected jpeg_tar, imagefolder or torchvision")
        if not path.exists():
            raise DataError(f"data path {path} does not exist")
        read, fingerprint = readers[source]
    # merge_valid joins the key only when set, so that caches written before it existed keep their keys.
    key = json.dumps([CACHE_FORMAT, source, name, size, *(["merge_valid"] if merge_valid else []), fingerprint(path)])
    cache = Path(cache_dir) / f"{name}-{source}-{size}px-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"
    if cache.exists():
        return load_decoded(cache)
    splits = _assemble(read(path, merge_valid), path, size)
    save_decoded(splits, cache)
    return splits


def download(spec: dict) -> None:
    """Fetch what `load` would download for a torchvision spec, and decode none of the images: the step
    that runs where the internet is (a cluster's submit host), so that `load`, with download off, runs on
    compute nodes that have none. Other sources are local files: nothing to fetch."""
    if spec.get("source") != "torchvision":
        return
    if spec.get("name") == "cinic10":
        _fetch_cinic10(Path(spec["path"]), spec.get("download", True))
    else:
        _load_torchvision(spec.get("name"), Path(spec["path"]), spec.get("download", True), 32)


def _read_tar(path: Path, merge_valid: bool = False) -> dict[str, list[tuple[str, str, bytes]]]:
    """(class, member name, bytes) of every image member <top>/<split>/<class>/<file> of a tar archive.

    Splits train and test, and valid with merge_valid.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS

    files = {split: [] for split in (*SPLITS, *(["valid"] if merge_valid else []))}
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if not (member.isfile() and member.name.lower().endswith(IMG_EXTENSIONS)):
                    continue
                parts = PurePosixPath(member.name).parts
                if len(parts) < 4 or parts[1] not in files:
                    raise DataError(
                        f"{path}: member {member.name} is not laid out as <top>/{{{','.join(files)}}}/<class>/<file>"
                    )
                files[parts[1]].append((parts[2], member.name, tar.extractfile(member).read()))
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"cannot read tar archive {path}: {e}") from None
    return files


def _read_folder(path: Path, merge_valid: bool = False) -> dict[str, list[tuple[str, str, bytes]]]:
    """(class, file path, bytes) of every image in the ImageFolder trees path/train and path/test.

    With merge_valid also path/valid, which must exist.
    """
    if merge_valid and not (path / "valid").is_dir():
        raise DataError(f"{path / 'valid'} does not exist: merge_valid needs a valid/ tree next to train/")
    files = {}
    for split in (*SPLITS, *(["valid"] if merge_valid else [])):
        classes, samples = list_imagefolder(path / split)
        files[split] = [(classes[label], file, Path(file).read_bytes()) for file, label in samples]
    return files


def list_imagefolder(tree: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """(sorted class names, [(file path, class index)]) of one ImageFolder tree, as torchvision lists it:
    by class, then by file name, image extensions only, subfolders of a class folder included."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    try:
        classes, class_to_idx = find_classes(tree)
        return classes, make_dataset(tree, class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as e:  # no class folders, or a class folder without images
        raise DataError(f"{tree}: {e}") from None


def _assemble(files: dict[str, list[tuple[str, str, bytes]]], path: Path, size: int) -> dict[str, Split]:
    """Decode every split, ordered like ImageFolder: by class name, then by file name.

    A valid split (merge_valid) is appended to train: the train images first, then the valid ones,
    each in that order. Classes are checked before anything is decoded.
    """
    ordered, classes = {}, {}
    for split, split_files in files.items():
        if not split_files:
            raise DataError(f"{path}: the {split} split has no images")
        ordered[split] = sorted(split_files, key=lambda f: (f[0], f[1]))
        classes[split] = sorted({c for c, _, _ in split_files})
    for other in ("valid", "test"):
        if other in classes and classes[other] != classes["train"]:
            only_train = sorted(set(classes["train"]) - set(classes[other]))
            only_other = sorted(set(classes[other]) - set(classes["train"]))
            raise DataError(
                f"{path}: train and {other} have different classes "
                f"(only in train: {only_train}, only in {other}: {only_other})"
            )
    if "valid" in ordered:
        ordered["train"] += ordered.pop("valid")
    class_to_idx = {c: i for i, c in enumerate(classes["train"])}
    splits = {}
    for split in SPLITS:
        images = torch.stack([_decode(raw, name, size) for _, name, raw in ordered[split]])
        labels = torch.tensor([class_to_idx[c] for c, _, _ in ordered[split]], dtype=torch.int64)
        splits[split] = Split(images, labels, list(classes["train"]))
    return splits


def read_image(path, size: int, fit: str = "resize") -> torch.Tensor:
    """uint8 [3, size, size] from an image file, brought to size as `_decode` does; DataError naming
    the file if it cannot be read or decoded."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e}") from None
    return _decode(raw, str(path), size, fit)


FITS = ("resize", "center-crop")


def _decode(raw: bytes, name: str, size: int, fit: str = "resize") -> torch.Tensor:
    """uint8 [3, size, size] from encoded image bytes; grayscale becomes RGB, alpha is dropped.

    fit "resize": both sides to `size` (the aspect ratio changes, nothing is cut off); "center-crop":
    the shorter side to `size`, then the centre square (the aspect ratio is kept, the long side's ends
    are cut off).
    """
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms.v2.functional import center_crop, resize

    if fit not in FITS:
        raise DataError(f"unknown fit {fit!r}: expected one of {', '.join(FITS)}")
    try:
        with warnings.catch_warnings():
            # torchvision 0.29 warns on every decode that its codecs are deprecated (in favour of torchcodec).
            warnings.filterwarnings("ignore", "The image decoding and encoding", DeprecationWarning)
            image = decode_image(torch.frombuffer(bytearray(raw), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError) as e:
        raise DataError(f"cannot decode image {name}: {e}") from None
    if image.shape[-2:] == (size, size):
        return image
    if fit == "center-crop":
        return center_crop(resize(image, size, antialias=True), [size, size])
    return resize(image, [size, size], antialias=True)


def _fetch_cinic10(root: Path, download: bool) -> None:
    """Download and extract CINIC-10 into root, unless root already holds train/, valid/ and test/.

    The archive is extracted into a staging folder inside root and its three folders are moved into
    root only after, so an interrupted extraction never leaves folders that look complete.
    """
    present = [f for f in CINIC10_FOLDERS if (root / f).is_dir()]
    if len(present) == len(CINIC10_FOLDERS):
        return
    missing = [f"{f}/" for f in CINIC10_FOLDERS if f not in present]
    if present:
        raise DataError(
            f"{root} holds an incomplete CINIC-10 (no {', '.join(missing)}); "
            f"delete {', '.join(f'{f}/' for f in present)} there to download it again"
        )
    if not download:
        if not root.exists():
            raise DataError(f"data path {root} does not exist (and download is off)")
        raise DataError(f"{root} has no CINIC-10 folders {', '.join(missing)} (and download is off)")
    from torchvision.datasets.utils import download_and_extract_archive

    staging = root / "CINIC-10.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        download_and_extract_archive(CINIC10_URL, root, extract_root=staging, md5=CINIC10_MD5)
    except (OSError, RuntimeError, EOFError, tarfile.TarError) as e:
        raise DataError(f"cannot download and extract CINIC-10 from {CINIC10_URL} into {root}: {e}") from None
    # The archive holds train/, valid/ and test/ at its top; accept one enclosing folder too.
    tops = [staging, *(d for d in staging.iterdir() if d.is_dir())]
    top = next((d for d in tops if all((d / f).is_dir() for f in CINIC10_FOLDERS)), None)
    if top is None:
        raise DataError(f"the CINIC-10 archive extracted into {staging} has no train/, valid/ and test/")
    for folder in CINIC10_FOLDERS:
        os.replace(top / folder, root / folder)
    shutil.rmtree(staging)


def _load_torchvision(name, root: Path, download: bool, size: int) -> dict[str, Split]:
    import torchvision
    from torchvision.transforms.v2.functional import resize

    datasets = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}
    if name not in datasets:
        expected = sorted([*datasets, "cinic10"])
        raise DataError(f"unknown torchvision dataset {name!r}: expected one of {expected}")
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
        splits[split] = Split(
            images.contiguous(), torch.tensor(dataset.targets, dtype=torch.int64), list(dataset.classes)
        )
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


def save_decoded(splits: dict[str, Split], cache: Path) -> None:
    """Decoded splits to a file (the cache), with their checksum; through a temporary file and os.replace,
    so a killed job never leaves half a cache."""
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


def load_decoded(cache: Path) -> dict[str, Split]:
    """The splits `save_decoded` wrote, checked against their checksum (torch alone: no torchvision)."""
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
