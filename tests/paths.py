"""Where the tests find things, relative to the repository root (no absolute paths)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The real CIFAR-10 JPEG archive, beside the repository (see ../shared/data/README.md); tests that
# need it skip or fall back to synthetic images where it is absent.
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
