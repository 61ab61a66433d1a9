"""The machine a job runs on: the device it trains on, whether the scheduler gave it a GPU, the NVIDIA
driver, the torch build, the CPU's bf16 and the tags that record them on the job's run."""

import ctypes
import os
import platform
import re
import subprocess
from pathlib import Path

import torch

# CUDA_VISIBLE_DEVICES values that hide every GPU (Slurm writes NoDevFiles for a job it gave none).
NO_DEVICES = ("", "-1", "NoDevFiles")


def gpu_grant(environ):
    """The variable by which the scheduler gave this job a GPU, as NAME=value, or None: Slurm's
    SLURM_GPUS* counts (0 is none), its SLURM_JOB_GPUS and SLURM_STEP_GPUS (device ids, so 0 is one),
    or CUDA_VISIBLE_DEVICES naming devices."""
    for name, value in sorted(environ.items()):
        if name.startswith("SLURM_GPUS"):
            given = value not in ("", "0")
        elif name in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS"):
            given = value != ""
        else:
            given = name == "CUDA_VISIBLE_DEVICES" and value.strip() not in NO_DEVICES
        if given:
            return f"{name}={value}"
    return None


def module_version(text):
    """The driver version in /proc/driver/nvidia/version (`NVRM version: ... Kernel Module  580.65.06  ...`)."""
    found = re.search(r"Kernel Module.*?\s(\d+\.\d+(?:\.\d+)?)\s", text)
    return found.group(1) if found else None


def driver_version():
    """The NVIDIA driver's version (nvidia-smi's answer, else the kernel module's), None if there is none."""
    command = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
    try:
        smi = subprocess.run(command, capture_output=True, text=True, timeout=10)
        if smi.returncode == 0 and smi.stdout.split():
            return smi.stdout.split()[0]  # one line per GPU
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        return module_version(Path("/proc/driver/nvidia/version").read_text())
    except OSError:
        return None


def torch_build():
    cuda = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    return f"torch {torch.__version__} ({cuda})"


def unusable_gpu(grant):
    """The error for a job given a GPU that torch cannot use: training on the CPU instead would take
    days where hours were planned, so it stops and says which driver and which torch build disagree."""
    driver = driver_version()
    return ValueError(
        f"this job was given a GPU ({grant}), but torch cannot use it: "
        f"{f'NVIDIA driver {driver}' if driver else 'no NVIDIA driver found'}, {torch_build()}. "
        "Install a torch build that suits the driver (docs/cluster.md, 'Which torch build for which driver': "
        "make setup TORCH_INDEX=...), or set device: cpu"
    )


def cpu_name():
    """The CPU's model (from /proc/cpuinfo on Linux, else what platform knows)."""
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    except OSError:
        found = None
    return found.group(1).strip() if found else platform.processor() or platform.machine()


def device_tags(device):
    """Where a job ran, as tags of its run: the device's name, its compute capability and the NVIDIA
    driver (both 'none' on a CPU), and the torch build."""
    tags = {"torch.version": torch.__version__, "torch.cuda": torch.version.cuda or "none"}
    if device.type != "cuda":
        return {"device.name": cpu_name(), "device.capability": "none", "device.driver": "none", **tags}
    major, minor = torch.cuda.get_device_capability(device)
    return {
        "device.name": torch.cuda.get_device_name(device),
        "device.capability": f"{major}.{minor}",
        "device.driver": driver_version() or "none",
        **tags,
    }


def cpu_flags():
    """The CPU's feature flags (/proc/cpuinfo on Linux; empty elsewhere) and its vendor."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set(), "unknown"
    flags = re.search(r"^flags\s*:(.*)$", info, re.MULTILINE)
    vendor = re.search(r"^vendor_id\s*:\s*(\S+)", info, re.MULTILINE)
    return set(flags.group(1).split()) if flags else set(), vendor.group(1) if vendor else "unknown"


def bf16_pays(device, flags=None, vendor=None):
    """Whether bf16 autocast trains faster than fp32 on `device`, as measured here: on a GPU yes; on a CPU
    with AMX (Intel) or AMD's AVX-512 BF16 (the proxy's step 1.9x on an EPYC) yes; on an Intel CPU with
    AVX-512 BF16 but no AMX no (its bf16 convolutions ran at 0.62x fp32's rate: docs/performance.md,
    "Precision and memory")."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if flags is None:
        flags, vendor = cpu_flags()
    return "amx_bf16" in flags or (vendor == "AuthenticAMD" and "avx512_bf16" in flags)


PRECISIONS = ("fp32", "bf16", "auto")


def autocast_bf16(precision, device):
    """Whether a run of train.precision `precision` trains under bf16 autocast on `device`: bf16 always,
    fp32 never, auto where it pays (`bf16_pays`). Scores and evaluation stay fp32 whatever it is."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision == "bf16" or (precision == "auto" and bf16_pays(device))


# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keep_freed_memory():
    """Have glibc keep freed memory for the next allocation rather than give it back to the system. A
    training step allocates and frees activations of hundreds of MB; by default each comes from a fresh
    mmap whose pages fault in again every step (a third of the proxy's CPU time went there: 235 img/s
    before, 338 after, on 2 threads). Results are unchanged; a job's memory stays at its peak. A no-op
    where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_MAX, 0)
        libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
    except (OSError, AttributeError):
        pass


def device(threads, name="auto"):
    """Threads for this job, and the device it runs on (the config's `device`): "auto" takes the GPU when
    torch sees one, the CPU when it sees none and the job was given none. A job given a GPU that torch
    cannot use (a torch build the driver does not run) stops, unless it asked for the CPU.
    On a GPU, cuDNN picks its fastest kernels and matmuls use TF32:
    runs there are fast, not bit-reproducible (the CPU path is)."""
    torch.set_num_threads(threads)
    keep_freed_memory()
    if name != "cpu" and not torch.cuda.is_available():
        grant = gpu_grant(os.environ)
        if grant:
            raise unusable_gpu(grant)
        if name == "cuda":
            raise ValueError(
                "the config says device: cuda, but torch sees no GPU on this machine "
                "(set device: auto or cpu, or run the job on a GPU node)"
            )
        name = "cpu"
    if name != "cpu":
        name = "cuda"
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return torch.device(name)
