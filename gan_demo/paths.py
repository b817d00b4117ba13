"""Where things are: the repository folder, the files shipped beside a checkpoint, and the one data-root resolver
that the CLI, the Train tab and the Text tab all use.

Data roots, in order: $GAN_DEMO_DATA alone when set; else ./data (the repository's, where the CLI downloads), then
../shared/data (the offline copies). A dataset counts as present under a root only when its files are complete
(MNIST's four raw files, a non-empty archive, folder or corpus): the empty ./data/mnist that a failed download
leaves behind is skipped, not chosen."""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent


class BesideFiles(NamedTuple):
    """What the app's Models tab shows beside a shipped checkpoint, each optional: written by an export or an
    adoption of the GPU plan's results, read by the app."""
    loss_history: Path     # <name>-losses.json: the loss curves as data (gan_demo.loss_history)
    loss_curve: Path       # <name>-losses.png
    progress: Path         # <name>-progress.gif: samples of fixed latents over the training


def beside_files(folder, name: str) -> BesideFiles:
    folder = Path(folder)
    return BesideFiles(folder / f"{name}-losses.json", folder / f"{name}-losses.png", folder / f"{name}-progress.gif")

# where a dataset lives under a data root (the layout of ../shared/data)
STANDARD_PATHS = {"mnist": ["mnist", "."], "cifar10": ["cifar10/cifar10-jpeg.tar.gz", "cifar10-jpeg.tar.gz",
                                                         "cifar10"],
                  "celeba": ["celeba/celeba128-webp.tar.gz", "celeba128-webp.tar.gz", "celeba"],
                  "text": ["text/lines.txt", "lines.txt"]}
# the files torchvision's MNIST needs (it checks the same four)
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


def data_roots() -> list[Path]:
    """Where datasets are looked for: $GAN_DEMO_DATA alone when set, else ./data, then ../shared/data."""
    if os.environ.get("GAN_DEMO_DATA"):
        return [Path(os.environ["GAN_DEMO_DATA"])]
    return [REPO / "data", REPO.parent / "shared" / "data"]


def dataset_kind(dataset: str) -> str:
    """The files a registry dataset reads: 'celeba64' and 'celeba128' share the face images."""
    return "celeba" if dataset.startswith("celeba") else dataset


def _usable(path: Path) -> bool:
    """A non-empty file, or a folder with something in it."""
    if path.is_file():
        return path.stat().st_size > 0
    return path.is_dir() and any(path.iterdir())


def locate(kind: str, data, layout_only: bool = False) -> Path | None:
    """The file/folder of a dataset kind under `data` (a root or the dataset itself); None if absent or partial.
    layout_only: only at its standard place under a root (a folder of other things is not taken for images)."""
    root = Path(data)
    if kind == "mnist":
        for sub in STANDARD_PATHS["mnist"]:
            raw = root / sub / "MNIST" / "raw"
            if all(_usable(raw / f) for f in MNIST_FILES):
                return root / sub
        return None
    if root.is_file() and not layout_only:
        return root if _usable(root) else None
    for sub in STANDARD_PATHS[kind]:
        if _usable(root / sub):
            return root / sub
    return root if kind != "text" and not layout_only and _usable(root) else None


def find_data(dataset: str, root=None) -> Path | None:
    """The first root (`root`, else data_roots()) under which the dataset's files are present and complete."""
    for r in [Path(root)] if root is not None else data_roots():
        try:
            if r.exists() and locate(dataset_kind(dataset), r, layout_only=True) is not None:
                return r
        except OSError:
            continue
    return None


def data_root(dataset: str) -> Path:
    """The root to read `dataset` from: where it is present, else the first root (where a download goes)."""
    return find_data(dataset) or data_roots()[0]


def missing_folders(path) -> list[Path]:
    """`path` and those of its parents that do not exist yet, deepest first: what creating `path` would make."""
    path = Path(path)
    return [f for f in (path, *path.parents) if not f.exists()]


def remove_empty_folders(folders) -> None:
    """Remove each folder that is empty, in the order given (deepest first), leaving any that holds something:
    what a failed run or download created is taken back, what someone put there stays."""
    for folder in folders:
        try:
            Path(folder).rmdir()                 # only succeeds when empty
        except OSError:
            pass

