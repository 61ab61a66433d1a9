import io
import tarfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision.datasets.utils
from torchvision.io import encode_jpeg, encode_png

from datadiet import data
from paths import CIFAR

# torchvision 0.29 warns on every encode_jpeg call that its image codecs are deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

# Class folders deliberately not in alphabetical order of creation; labels must follow sorted names.
COLORS = {"dog": (200, 40, 40), "ant": (40, 200, 40), "cat": (40, 40, 200)}


def jpeg(color=(128, 128, 128), size=(32, 32)) -> bytes:
    image = torch.tensor(color, dtype=torch.uint8).view(-1, 1, 1).expand(-1, *size).contiguous()
    return encode_jpeg(image, quality=95).numpy().tobytes()


def valid_color(color):
    """valid/ images are darker than train/ ones, so that the order of a merged split can be read off."""
    return tuple(c // 2 for c in color)


def toy_files(train=3, test=2, valid=0) -> dict[str, bytes]:
    """Relative path -> JPEG bytes: every image of a class is filled with the class's color."""
    files = {}
    for split, count in (("train", train), ("test", test), ("valid", valid)):
        for name, color in COLORS.items():
            for i in range(count):
                files[f"{split}/{name}/{i:04d}.jpg"] = jpeg(valid_color(color) if split == "valid" else color)
    return files


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, raw in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(raw)
    return root


def make_tar(path: Path, files: dict[str, bytes], top="toy") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for rel, raw in files.items():
            member = tarfile.TarInfo(f"{top}/{rel}")
            member.size = len(raw)
            tar.addfile(member, io.BytesIO(raw))
    return path


def make_source(kind: str, tmp_path: Path, files: dict[str, bytes]) -> dict:
    if kind == "jpeg_tar":
        return {"source": kind, "path": str(make_tar(tmp_path / "toy.tar.gz", files)), "name": "toy"}
    return {"source": kind, "path": str(make_folder(tmp_path / "toy", files)), "name": "toy"}


@pytest.mark.parametrize("kind", ["jpeg_tar", "imagefolder"])
def test_load_round_trip(kind, tmp_path):
    splits = data.load(make_source(kind, tmp_path, toy_files()), tmp_path / "cache")
    for split, count in (("train", 3), ("test", 2)):
        s = splits[split]
        assert s.classes == ["ant", "cat", "dog"]
        assert s.images.shape == (3 * count, 3, 32, 32) and s.images.dtype == torch.uint8
        assert s.images.is_contiguous()
        assert s.labels.dtype == torch.int64
        assert s.labels.tolist() == sorted([0, 1, 2] * count)
        for image, label in zip(s.images, s.labels):
            color = torch.tensor(COLORS[s.classes[label]], dtype=torch.float32)
            assert (image.float().mean((1, 2)) - color).abs().max() < 4


def test_tar_and_folder_give_the_same_tensors(tmp_path):
    files = toy_files()
    from_tar = data.load(make_source("jpeg_tar", tmp_path, files), tmp_path / "c1")
    from_folder = data.load(make_source("imagefolder", tmp_path, files), tmp_path / "c2")
    for split in ("train", "test"):
        assert torch.equal(from_tar[split].images, from_folder[split].images)
        assert torch.equal(from_tar[split].labels, from_folder[split].labels)


@pytest.mark.parametrize("kind", ["jpeg_tar", "imagefolder"])
def test_cache_is_reused_and_written_whole(kind, tmp_path, monkeypatch):
    spec, cache_dir = make_source(kind, tmp_path, toy_files()), tmp_path / "cache"
    first = data.load(spec, cache_dir)
    assert [p.suffix for p in cache_dir.iterdir()] == [".pt"]  # no temporary file left behind

    def no_decoding(*args):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(data, "_decode", no_decoding)
    second = data.load(spec, cache_dir)
    assert torch.equal(first["train"].images, second["train"].images)
    assert torch.equal(first["test"].labels, second["test"].labels)
    assert second["train"].classes == first["train"].classes


def test_interrupted_cache_write_leaves_nothing(tmp_path, monkeypatch):
    spec, cache_dir = make_source("jpeg_tar", tmp_path, toy_files()), tmp_path / "cache"

    def dying_save(obj, file):
        Path(file).write_bytes(b"half a cache")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError, match="disk full"):
        data.load(spec, cache_dir)
    assert list(cache_dir.iterdir()) == []
    monkeypatch.undo()
    assert len(data.load(spec, cache_dir)["train"].labels) == 9


@pytest.mark.parametrize("kind", ["jpeg_tar", "imagefolder"])
def test_changed_source_is_decoded_again(kind, tmp_path):
    cache_dir = tmp_path / "cache"
    assert len(data.load(make_source(kind, tmp_path, toy_files(train=3)), cache_dir)["train"].labels) == 9
    assert len(data.load(make_source(kind, tmp_path, toy_files(train=4)), cache_dir)["train"].labels) == 12
    assert len(list(cache_dir.glob("*.pt"))) == 2


def test_image_size_is_part_of_the_cache_key(tmp_path):
    spec = make_source("jpeg_tar", tmp_path, toy_files())
    assert data.load(spec, tmp_path / "cache")["train"].images.shape[-2:] == (32, 32)
    assert data.load({**spec, "image_size": 16}, tmp_path / "cache")["train"].images.shape[-2:] == (16, 16)


def test_tampered_cache_raises(tmp_path):
    spec, cache_dir = make_source("jpeg_tar", tmp_path, toy_files()), tmp_path / "cache"
    data.load(spec, cache_dir)
    (cache,) = cache_dir.glob("*.pt")
    payload = torch.load(cache)
    payload["train_images"][0, 0, 0, 0] ^= 1
    torch.save(payload, cache)
    with pytest.raises(data.DataError, match="checksum") as error:
        data.load(spec, cache_dir)
    assert str(cache) in str(error.value) and "delete" in str(error.value)


def test_truncated_cache_raises(tmp_path):
    spec, cache_dir = make_source("jpeg_tar", tmp_path, toy_files()), tmp_path / "cache"
    data.load(spec, cache_dir)
    (cache,) = cache_dir.glob("*.pt")
    cache.write_bytes(cache.read_bytes()[:100])
    with pytest.raises(data.DataError, match="delete") as error:
        data.load(spec, cache_dir)
    assert str(cache) in str(error.value)


@pytest.mark.parametrize("kind", ["jpeg_tar", "imagefolder"])
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image_is_named(kind, damage, tmp_path):
    files = {**toy_files(), "train/cat/bad.jpg": b"not a jpeg" if damage == "garbage" else jpeg()[:300]}
    with pytest.raises(data.DataError, match="bad.jpg") as error:
        data.load(make_source(kind, tmp_path, files), tmp_path / "cache")
    assert "train/cat/bad.jpg" in str(error.value)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_truncated_archive_is_named(tmp_path):
    spec = make_source("jpeg_tar", tmp_path, toy_files())
    archive = Path(spec["path"])
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(data.DataError, match="cannot read tar archive") as error:
        data.load(spec, tmp_path / "cache")
    assert str(archive) in str(error.value)


@pytest.mark.parametrize("kind", ["jpeg_tar", "imagefolder", "torchvision"])
def test_missing_path_is_named(kind, tmp_path):
    missing = tmp_path / "nowhere" / "cifar10.tar.gz"
    spec = {"source": kind, "path": str(missing), "name": "cifar10", "download": False}
    with pytest.raises(data.DataError, match="does not exist") as error:
        data.load(spec, tmp_path / "cache")
    assert str(missing) in str(error.value)


def test_bad_spec_raises(tmp_path):
    with pytest.raises(data.DataError, match="unknown data source 'zip'"):
        data.load({"source": "zip", "path": str(tmp_path)}, tmp_path / "cache")
    with pytest.raises(data.DataError, match="unknown torchvision dataset 'mnist'"):
        data.load({"source": "torchvision", "path": str(tmp_path), "name": "mnist"}, tmp_path / "cache")
    with pytest.raises(data.DataError, match="no 'path'"):
        data.load({"source": "jpeg_tar"}, tmp_path / "cache")


def test_tar_member_outside_the_layout_is_named(tmp_path):
    files = {**toy_files(), "valid/cat/0000.jpg": jpeg()}
    with pytest.raises(data.DataError, match="toy/valid/cat/0000.jpg"):
        data.load(make_source("jpeg_tar", tmp_path, files), tmp_path / "cache")


@pytest.mark.parametrize("kind", ["jpeg_tar", "imagefolder"])
def test_empty_split_raises(kind, tmp_path):
    files = {rel: raw for rel, raw in toy_files().items() if rel.startswith("train/")}
    expected = "the test split has no images"
    if kind == "imagefolder":
        (tmp_path / "toy" / "test").mkdir(parents=True)
        expected = "toy/test: Couldn't find any class folder"
    with pytest.raises(data.DataError, match=expected):
        data.load(make_source(kind, tmp_path, files), tmp_path / "cache")


@pytest.mark.parametrize("kind", ["jpeg_tar", "imagefolder"])
def test_train_and_test_classes_must_match(kind, tmp_path):
    files = {**toy_files(), "test/eel/0000.jpg": jpeg()}
    with pytest.raises(data.DataError, match=r"different classes.*only in test: \['eel'\]"):
        data.load(make_source(kind, tmp_path, files), tmp_path / "cache")


@pytest.mark.parametrize("kind", ["jpeg_tar", "imagefolder"])
def test_other_sizes_are_resized_and_grayscale_becomes_rgb(kind, tmp_path):
    files = {**toy_files(), "train/ant/big.jpg": jpeg((10, 20, 30), size=(40, 48)), "train/cat/gray.jpg": jpeg((90,))}
    train = data.load(make_source(kind, tmp_path, files), tmp_path / "cache")["train"]
    assert train.images.shape == (11, 3, 32, 32)
    names = ["0000", "0001", "0002", "big"]  # the order of class "ant" (label 0)
    big = train.images[names.index("big")].float()
    assert (big.mean((1, 2)) - torch.tensor([10.0, 20.0, 30.0])).abs().max() < 4
    gray = train.images[4 + 3]  # class "cat" comes next: 0000, 0001, 0002, gray
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert (gray.float().mean() - 90).abs() < 3


def assert_colors(split: data.Split, colors: list[tuple]):
    assert len(split.images) == len(colors)
    for image, color in zip(split.images, colors):
        assert (image.float().mean((1, 2)) - torch.tensor(color, dtype=torch.float32)).abs().max() < 4


@pytest.mark.parametrize("kind", ["jpeg_tar", "imagefolder"])
def test_merge_valid_appends_valid_to_train(kind, tmp_path):
    spec = {**make_source(kind, tmp_path, toy_files(valid=2)), "merge_valid": True}
    cache_dir = tmp_path / "cache"
    splits = data.load(spec, cache_dir)
    train, test = splits["train"], splits["test"]
    assert train.classes == test.classes == ["ant", "cat", "dog"]
    # All of train/ in ImageFolder order (class, then file), then all of valid/ in the same order.
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] + [0, 0, 1, 1, 2, 2]
    sorted_colors = [COLORS[c] for c in train.classes]
    assert_colors(
        train, [c for c in sorted_colors for _ in range(3)] + [valid_color(c) for c in sorted_colors for _ in range(2)]
    )
    assert test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert_colors(test, [c for c in sorted_colors for _ in range(2)])
    # merge_valid is part of the cache key; the merged split comes back from its cache.
    if kind == "imagefolder":  # a jpeg_tar with valid/ members is refused without merge_valid
        assert len(data.load({**spec, "merge_valid": False}, cache_dir)["train"].labels) == 9
    assert torch.equal(data.load(spec, cache_dir)["train"].images, train.images)
    assert len(list(cache_dir.glob("*.pt"))) == (2 if kind == "imagefolder" else 1)


@pytest.mark.parametrize("kind", ["jpeg_tar", "imagefolder"])
@pytest.mark.parametrize("change", ["extra", "missing"])
def test_merge_valid_needs_the_same_classes(kind, change, tmp_path, monkeypatch):
    files = toy_files(valid=2)
    if change == "extra":
        files["valid/eel/0000.jpg"] = jpeg()
        expected = r"train and valid have different classes \(only in train: \[\], only in valid: \['eel'\]\)"
    else:
        files = {rel: raw for rel, raw in files.items() if not rel.startswith("valid/cat/")}
        expected = r"train and valid have different classes \(only in train: \['cat'\], only in valid: \[\]\)"
    monkeypatch.setattr(data, "_decode", None)  # classes are checked before anything is decoded
    with pytest.raises(data.DataError, match=expected) as error:
        data.load({**make_source(kind, tmp_path, files), "merge_valid": True}, tmp_path / "cache")
    assert str(tmp_path / "toy") in str(error.value)


@pytest.mark.parametrize("kind", ["jpeg_tar", "imagefolder"])
def test_merge_valid_without_valid_is_named(kind, tmp_path):
    spec = {**make_source(kind, tmp_path, toy_files()), "merge_valid": True}
    expected = {
        "jpeg_tar": f"{tmp_path / 'toy.tar.gz'}: the valid split has no images",
        "imagefolder": f"{tmp_path / 'toy' / 'valid'} does not exist: merge_valid needs",
    }[kind]
    with pytest.raises(data.DataError) as error:
        data.load(spec, tmp_path / "cache")
    assert expected in str(error.value)


def test_merge_valid_is_refused_where_it_means_nothing(tmp_path):
    with pytest.raises(data.DataError, match="merge_valid must be true or false"):
        data.load({**make_source("imagefolder", tmp_path, toy_files()), "merge_valid": "no"}, tmp_path / "c")
    with pytest.raises(data.DataError, match="not to torchvision 'cifar10'"):
        data.load(
            {"source": "torchvision", "name": "cifar10", "path": str(tmp_path), "merge_valid": True}, tmp_path / "c"
        )


def cinic10_files(train=3, valid=2, test=2) -> dict[str, bytes]:
    """A tiny CINIC-10 as its archive unpacks: train/, valid/ and test/ trees of PNGs, and text files."""
    files = {"README.md": b"CINIC-10", "imagenet-contributors.csv": b"synset,file"}
    for split, count in (("train", train), ("valid", valid), ("test", test)):
        for name, color in COLORS.items():
            for i in range(count):
                fill = valid_color(color) if split == "valid" else color
                image = torch.tensor(fill, dtype=torch.uint8).view(-1, 1, 1).expand(-1, 32, 32).contiguous()
                # CINIC-10 names its files after their source: cifar10-train-<n>.png, n01234567_<n>.png
                files[f"{split}/{name}/cifar10-{split}-{i}.png"] = encode_png(image).numpy().tobytes()
    return files


def refuse_download(*args, **kwargs):
    raise AssertionError("tried to download CINIC-10")


def cinic10_spec(root: Path, download=False) -> dict:
    return {"source": "torchvision", "name": "cinic10", "path": str(root), "download": download}


@pytest.mark.parametrize("download", [False, True])
def test_cinic10_from_extracted_folders(download, tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", refuse_download)
    spec = cinic10_spec(make_folder(tmp_path / "cinic10", cinic10_files()), download)
    cache_dir = tmp_path / "cache"
    splits = data.load(spec, cache_dir)
    train, test = splits["train"], splits["test"]
    assert train.classes == test.classes == ["ant", "cat", "dog"]
    assert train.images.shape == (15, 3, 32, 32) and test.images.shape == (6, 3, 32, 32)
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] + [0, 0, 1, 1, 2, 2]  # train/, then valid/
    sorted_colors = [COLORS[c] for c in train.classes]
    assert_colors(
        train, [c for c in sorted_colors for _ in range(3)] + [valid_color(c) for c in sorted_colors for _ in range(2)]
    )
    # merge_valid is implied, whatever the spec says (a schema default may fill in false).
    merged = data.load({**spec, "merge_valid": False}, cache_dir)["train"]
    assert torch.equal(merged.images, train.images)
    (cache,) = cache_dir.glob("*.pt")
    assert cache.name.startswith("cinic10-torchvision-32px-")
    monkeypatch.setattr(data, "_decode", None)  # the second load comes from the cache
    assert torch.equal(data.load(spec, cache_dir)["test"].images, test.images)


def test_cinic10_download_extracts_into_path(tmp_path, monkeypatch):
    root, calls = tmp_path / "cinic10", []

    def fake_download(url, download_root, extract_root=None, md5=None, **kwargs):
        calls.append((url, Path(download_root), md5))
        make_folder(Path(extract_root), cinic10_files())

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", fake_download)
    splits = data.load(cinic10_spec(root, download=True), tmp_path / "cache")
    assert calls == [(data.CINIC10_URL, root, "6ee4d0c996905fe93221de577967a372")]
    assert sorted(p.name for p in root.iterdir()) == ["test", "train", "valid"]  # the staging folder is gone
    assert len(splits["train"].labels) == 15 and len(splits["test"].labels) == 6
    data.load(cinic10_spec(root, download=True), tmp_path / "cache")
    assert len(calls) == 1  # extracted folders present: no second download


def test_cinic10_without_download_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", refuse_download)
    root = tmp_path / "cinic10"
    with pytest.raises(data.DataError, match="does not exist") as error:
        data.load(cinic10_spec(root), tmp_path / "cache")
    assert str(root) in str(error.value) and "download is off" in str(error.value)
    root.mkdir()
    with pytest.raises(data.DataError, match="no CINIC-10 folders train/, valid/, test/") as error:
        data.load(cinic10_spec(root), tmp_path / "cache")
    assert str(root) in str(error.value)
    make_folder(root, {rel: raw for rel, raw in cinic10_files().items() if not rel.startswith("valid/")})
    with pytest.raises(data.DataError, match=r"incomplete CINIC-10 \(no valid/\)") as error:
        data.load(cinic10_spec(root, download=True), tmp_path / "cache")
    assert str(root) in str(error.value)


def test_subset_per_class_is_balanced_sorted_and_seeded():
    sizes = [10, 12, 15, 20, 11]
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)])[torch.randperm(sum(sizes))]
    index = data.subset_per_class(labels, 8, seed=0)
    assert index.dtype == torch.int64 and len(index) == 40
    assert torch.equal(index, index.sort().values) and len(index.unique()) == 40
    assert torch.bincount(labels[index]).tolist() == [8] * 5
    assert torch.equal(index, data.subset_per_class(labels, 8, seed=0))
    assert not torch.equal(index, data.subset_per_class(labels, 8, seed=1))
    with pytest.raises(ValueError, match=r"cannot take 11 .*\{0: 10\}"):
        data.subset_per_class(labels, 11, seed=0)


def test_channel_stats_and_normalize():
    generator = torch.Generator().manual_seed(0)
    images = torch.stack(
        [
            torch.randint(0, 256, (64, 32, 32), generator=generator),
            torch.randint(100, 120, (64, 32, 32), generator=generator),
            torch.randint(0, 50, (64, 32, 32), generator=generator),
        ],
        1,
    ).to(torch.uint8)
    mean, std = data.channel_stats(images)
    as_float = images.double().div(255).transpose(0, 1).reshape(3, -1)
    assert mean.dtype == std.dtype == torch.float32 and mean.shape == std.shape == (3,)
    torch.testing.assert_close(mean, as_float.mean(1).float())
    torch.testing.assert_close(std, as_float.std(1, correction=0).float())

    x = data.normalize(images, mean, std)
    assert x.dtype == torch.float32 and x.shape == images.shape
    assert x.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(x.std((0, 2, 3)), torch.ones(3), atol=1e-3, rtol=0)


def random_images(n, size=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=generator, dtype=torch.uint8)


def windows(image, pad):
    """Every crop of the reflect-padded image, flipped or not, keyed by (dy, dx, flipped): the slow obvious way."""
    padded = F.pad(image[None].float(), (pad,) * 4, mode="reflect")[0]
    h, w = image.shape[-2:]
    offsets = range(2 * pad + 1)
    crops = {(dy, dx): padded[:, dy : dy + h, dx : dx + w] for dy in offsets for dx in offsets}
    return {
        **{(dy, dx, False): c for (dy, dx), c in crops.items()},
        **{(dy, dx, True): c.flip(-1) for (dy, dx), c in crops.items()},
    }


def matching_windows(images, out, pad):
    found = []
    for image, crop in zip(images, out):
        matches = [key for key, window in windows(image, pad).items() if torch.equal(window, crop.float())]
        assert matches, "an output is not a (flipped) window of the reflect-padded input"
        found.append(matches)
    return found


def test_augment_shape_and_determinism():
    images = random_images(64, size=32)
    out = data.augment(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert torch.equal(out, data.augment(images, torch.Generator().manual_seed(1)))
    assert not torch.equal(out, data.augment(images, torch.Generator().manual_seed(2)))
    # Resumable: restoring the generator state replays the same batch.
    generator = torch.Generator().manual_seed(3)
    data.augment(images, generator)
    state = generator.get_state()
    batch = data.augment(images, generator)
    generator.set_state(state)
    assert torch.equal(batch, data.augment(images, generator))


def test_augment_crops_are_windows_of_the_reflect_padded_input():
    images, pad = random_images(48), 2
    out = data.augment(images, torch.Generator().manual_seed(0), pad=pad)
    found = matching_windows(images, out, pad)
    offsets = {matches[0][:2] for matches in found}
    assert len(offsets) > 5  # one offset per example
    assert any(m[0][0] in (0, 2 * pad) for m in found)  # crops do reach into the padding


def test_augment_crop_per_batch_shares_one_offset():
    images, pad = random_images(48), 2
    out = data.augment(images, torch.Generator().manual_seed(0), pad=pad, crop_per_batch=True)
    found = matching_windows(images, out, pad)
    assert len({matches[0][:2] for matches in found}) == 1
    assert len({matches[0][2] for matches in found}) == 2  # flips stay per example


def test_augment_without_padding_only_flips_about_half():
    images = random_images(2000)
    out = data.augment(images, torch.Generator().manual_seed(0), pad=0)
    kept = (out == images).flatten(1).all(1)
    flipped = (out == images.flip(-1)).flatten(1).all(1)
    assert (kept | flipped).all()
    assert 900 < flipped.sum() < 1100


@pytest.fixture(scope="module")
def cifar10(tmp_path_factory):
    if not CIFAR.exists():
        pytest.skip(f"real CIFAR-10 JPEGs not found at {CIFAR}")
    spec = {"source": "jpeg_tar", "path": str(CIFAR), "name": "cifar10"}
    cache_dir = tmp_path_factory.mktemp("cache")
    return spec, cache_dir, data.load(spec, cache_dir)


def test_real_cifar10(cifar10):
    spec, cache_dir, splits = cifar10
    train, test = splits["train"], splits["test"]
    assert train.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert torch.bincount(train.labels).tolist() == [5000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    # The published CIFAR-10 training-set statistics; JPEG compression moves them very little.
    mean, std = data.channel_stats(train.images)
    torch.testing.assert_close(mean, torch.tensor([0.4914, 0.4822, 0.4465]), atol=0.01, rtol=0)
    torch.testing.assert_close(std, torch.tensor([0.2470, 0.2435, 0.2616]), atol=0.01, rtol=0)


def test_real_cifar10_subset_from_cache(cifar10, monkeypatch):
    spec, cache_dir, splits = cifar10
    monkeypatch.setattr(data, "_decode", None)  # the second load must come from the cache
    train = data.load(spec, cache_dir)["train"]
    assert torch.equal(train.images, splits["train"].images)
    index = data.subset_per_class(train.labels, 30, seed=4426)
    images = train.images[index]
    mean, std = data.channel_stats(images)
    x = data.normalize(data.augment(images, torch.Generator().manual_seed(0)), mean, std)
    assert x.shape == (300, 3, 32, 32) and torch.isfinite(x).all()


def test_nested_subsets_hold_every_smaller_one_and_stay_class_balanced():
    """The size sweep's training sets: one seed's subsets are nested, balanced to within one example a
    class, and at per_class x classes exactly the per-class subset of the same seed."""
    sizes = [40, 35, 50, 45, 38]
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)])[torch.randperm(sum(sizes))]
    subsets = {n: data.nested_subset(labels, n, seed=3) for n in (7, 25, 60, 101, 175)}
    for small, large in zip(list(subsets)[:-1], list(subsets)[1:]):
        assert set(subsets[small].tolist()) < set(subsets[large].tolist())
    for n, index in subsets.items():
        counts = torch.bincount(labels[index], minlength=5)
        assert len(index) == len(index.unique()) == n and counts.max() - counts.min() <= 1, (n, counts)
        assert torch.equal(index, index.sort().values)
    assert torch.equal(data.nested_subset(labels, 150, seed=3), data.subset_per_class(labels, 30, seed=3))
    assert not torch.equal(data.nested_subset(labels, 150, seed=4), data.subset_per_class(labels, 30, seed=3))
    with pytest.raises(ValueError, match=r"cannot take 41 .*\{0: 40"):
        data.nested_subset(labels, 205, seed=3)


def test_download_fetches_only_torchvision_sources_and_says_when_it_cannot(tmp_path):
    data.download({"source": "jpeg_tar", "path": str(tmp_path / "absent.tar.gz")})  # a local file: nothing to fetch
    with pytest.raises(data.DataError, match="does not exist"):
        data.download({"source": "torchvision", "name": "cifar10", "path": str(tmp_path / "c"), "download": False})
