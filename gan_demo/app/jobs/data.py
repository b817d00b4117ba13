"""The Train tab's data: where each dataset is found, which models can train here, and one shared cache of
decoded training sets (at most DATA_CACHE in memory, whatever the number of runs)."""
from __future__ import annotations

import collections
import os
import threading
from pathlib import Path

from gan_demo.paths import REPO
from gan_demo.registry import REGISTRY
from training.data import DataError, load_dataset, locate

from .runner import one_line

DATA_CACHE = 2              # decoded datasets kept in memory, shared by all runs
DATA_HINTS = {"mnist": "mnist/MNIST/raw/*-ubyte (torchvision's MNIST files)",
              "cifar10": "cifar10/cifar10-jpeg.tar.gz (or a folder of images in class folders)",
              "celeba": "celeba/celeba128-webp.tar.gz (or any folder, zip or tar of face images)",
              "text": "text/lines.txt (one sentence per line)"}


def data_roots() -> list[Path]:
    """Where datasets are looked for: $GAN_DEMO_DATA alone when set, else ./data, then ../shared/data."""
    if os.environ.get("GAN_DEMO_DATA"):
        return [Path(os.environ["GAN_DEMO_DATA"])]
    return [REPO / "data", REPO.parent / "shared" / "data"]


def _kind(dataset: str) -> str:
    return "celeba" if dataset.startswith("celeba") else dataset


def find_data(dataset: str, root=None) -> Path | None:
    """The first root (`root`, else data_roots()) under which the dataset's files are present."""
    for r in [Path(root)] if root is not None else data_roots():
        try:
            if r.exists() and locate(_kind(dataset), r) is not None:
                return r
        except OSError:
            continue
    return None


def trainable_models(root=None) -> list[str]:
    """The MNIST family and the text GAN always (MNIST downloads; a missing corpus is reported when a run
    starts); CIFAR-10 and faces only when their data is present."""
    return [n for n, e in REGISTRY.items()
            if e.dataset in ("mnist", "text") or find_data(e.dataset, root) is not None]


_data: collections.OrderedDict = collections.OrderedDict()
_data_lock = threading.Lock()


def load_data(dataset: str, root=None):
    """The training split, decoded once and shared by all runs (at most DATA_CACHE datasets in memory).
    DataError says what to provide."""
    found = find_data(dataset, root)
    if found is None and dataset in ("mnist", "cifar10"):        # torchvision may download it here
        found = Path(root) if root is not None else data_roots()[0]
        try:
            found.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"no {dataset} data found and cannot create '{found}' to download it "
                            f"({e.strerror or e}); set GAN_DEMO_DATA to a folder holding "
                            f"{DATA_HINTS[_kind(dataset)]}") from None
    if found is None:
        where = root if root is not None else " or ".join(str(r) for r in data_roots())
        raise DataError(f"no {dataset} training data found under {where}: set GAN_DEMO_DATA to a folder "
                        f"holding {DATA_HINTS[_kind(dataset)]}")
    key = (dataset, str(found.resolve()))
    with _data_lock:                 # one load at a time: two runs of one dataset decode it once
        if key in _data:
            _data.move_to_end(key)
            return _data[key]
        try:
            data = load_dataset(dataset, found)
        except DataError as e:
            raise DataError(f"{one_line(e).split('; give --data')[0].split(': give --data')[0]}; set "
                            f"GAN_DEMO_DATA to a folder holding {DATA_HINTS[_kind(dataset)]}") from None
        _data[key] = data
        while len(_data) > DATA_CACHE:
            _data.popitem(last=False)
        return data
