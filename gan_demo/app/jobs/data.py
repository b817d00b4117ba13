"""The Train tab's data: which models can train here (datasets found by gan_demo.paths, the resolver the CLI and
the Text tab use too), and one shared cache of decoded training sets (at most DATA_CACHE, whatever the runs)."""
from __future__ import annotations

import collections
import threading
from pathlib import Path

from gan_demo.paths import data_roots, dataset_kind, find_data
from gan_demo.registry import REGISTRY
from training.data import DataError, load_dataset

DATA_CACHE = 2              # decoded datasets kept in memory, shared by all runs
DATA_HINTS = {"mnist": "mnist/MNIST/raw/*-ubyte (torchvision's MNIST files)",
              "cifar10": "cifar10/cifar10-jpeg.tar.gz (or a folder of images in class folders)",
              "celeba": "celeba/celeba128-webp.tar.gz (or any folder, zip or tar of face images)",
              "text": "text/lines.txt (one sentence per line)"}


def _hint(dataset: str) -> str:
    return f"set GAN_DEMO_DATA to a folder holding {DATA_HINTS[dataset_kind(dataset)]}"


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
                            f"({e.strerror or e})", _hint(dataset)) from None
    if found is None:
        where = root if root is not None else " or ".join(str(r) for r in data_roots())
        raise DataError(f"no {dataset} training data found under {where}", _hint(dataset))
    key = (dataset, str(found.resolve()))
    with _data_lock:                 # one load at a time: two runs of one dataset decode it once
        if key in _data:
            _data.move_to_end(key)
            return _data[key]
        try:
            data = load_dataset(dataset, found)
        except DataError as e:       # the message stays; the CLI's advice (--data) becomes the server's
            raise DataError(e.message, _hint(dataset)) from None
        _data[key] = data
        while len(_data) > DATA_CACHE:
            _data.popitem(last=False)
        return data
