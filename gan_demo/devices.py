"""Where inference and training run: CUDA when present, else Apple MPS, else the CPU (GAN_DEMO_DEVICE overrides)."""
import os

import torch

PROCESS_THREADS = torch.get_num_threads()     # torch's CPU threads as the process started (OMP_NUM_THREADS etc.)


def use_process_threads() -> None:
    """Give the calling thread the process's CPU threads. torch.set_num_threads in one thread (a projection runs
    on 1) also sets what threads started meanwhile get, for good: a long job's thread resets its own count."""
    if torch.get_num_threads() != PROCESS_THREADS:
        torch.set_num_threads(PROCESS_THREADS)


def pick_device(requested: str | None = None) -> torch.device:
    requested = requested or os.environ.get("GAN_DEMO_DEVICE") or "auto"
    if requested != "auto":
        return _available(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def _available(requested: str) -> torch.device:
    """The named device, or a ValueError in one line when it is no device name or this machine lacks it."""
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ValueError(f"unknown device '{requested}' (use cpu, cuda, cuda:N, mps or auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{requested}' is not available here (no CUDA GPU found)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device '{requested}' is not available here "
                         f"({torch.cuda.device_count()} CUDA device(s) found)")
    if device.type == "mps" and not _mps_available():
        raise ValueError(f"device '{requested}' is not available here (no Apple MPS device)")
    return device
