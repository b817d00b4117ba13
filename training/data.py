"""Datasets decoded once into uint8 tensors (cached in an ignored folder as safetensors), sampled on the device.

Sources, by model dataset:
  mnist      torchvision's MNIST layout (…/MNIST/raw/*-idx*-ubyte), downloaded by torchvision if absent
  cifar10    a tar/zip/folder in ImageFolder layout (…/train/<class>/*.jpg), or torchvision's CIFAR10 (downloads)
  celeba64/128  any tar/zip/folder of face images (centre-cropped, antialiased resize); 1,000 held out
  text       a text file of lines; every 10th line held out
`--data` may name the dataset's own file/folder or a root holding the standard sub-paths (e.g. ../shared/data);
without it, gan_demo.paths.data_root picks the root (the same resolver as the app's tabs).
"""
from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from gan_demo.checkpoint import atomic_write
from gan_demo.paths import REPO, data_root, locate, missing_folders, remove_empty_folders
from gan_demo.text_codec import TextCodec

from .errors import HintedError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
CELEBA_HOLDOUT = 1000
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
class DataError(HintedError):
    """A dataset that cannot be found or read; the hint says what to provide."""


def cache_dir() -> Path:
    return Path(os.environ.get("GAN_DEMO_CACHE") or REPO / ".cache")


@dataclass
class ImageData:
    images: torch.Tensor            # uint8 N×C×H×W
    labels: torch.Tensor | None     # int64 N, or None
    source: str

    def __len__(self):
        return len(self.images)

    def to(self, device) -> "ImageData":
        labels = self.labels.to(device) if self.labels is not None else None
        return ImageData(self.images.to(device), labels, self.source)

    def batch(self, n: int, gen: torch.Generator, flip: bool = False, rows: slice | None = None):
        """A random batch in [-1, 1] (float32 on the data's device) and its labels; all randomness from `gen`.
        `rows`: return only these rows of the n drawn (a data-parallel rank's part; `gen` advances as for all n)."""
        idx = torch.randint(0, len(self.images), (n,), generator=gen, device=gen.device)
        idx = idx if rows is None else idx[rows]
        x = self.images[idx].float().div_(127.5).sub_(1.0)
        if flip:
            coin = torch.rand(n, 1, 1, 1, generator=gen, device=gen.device) < 0.5
            x = torch.where(coin if rows is None else coin[rows], x.flip(3), x)
        return x, (self.labels[idx] if self.labels is not None else None)


@dataclass
class TextData:
    tokens: torch.Tensor            # int64 N×L ids (SOS … EOS PAD…)
    codec: TextCodec
    lines: list[str]                # the normalised lines (for novelty checks)
    source: str
    labels = None

    def __len__(self):
        return len(self.tokens)

    def to(self, device) -> "TextData":
        return TextData(self.tokens.to(device), self.codec, self.lines, self.source)

    def batch(self, n: int, gen: torch.Generator, flip: bool = False, smoothing: float = 0.0,
              rows: slice | None = None):
        """Real sequences as N×V×L one-hots, label-smoothed inside <SOS>…<EOS>, zero outside (masked).
        `rows` as for ImageData.batch."""
        idx = torch.randint(0, len(self.tokens), (n,), generator=gen, device=gen.device)
        ids = self.tokens[idx if rows is None else idx[rows]]
        v = len(self.codec)
        x = torch.nn.functional.one_hot(ids, v).float()
        if smoothing:
            x = x * (1 - smoothing) + smoothing / v
        x = x * (ids != self.codec.pad).unsqueeze(2)
        return x.transpose(1, 2).contiguous(), None


def _cache_key(src: Path, *parts) -> str:
    st = src.stat()
    h = hashlib.sha1(f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|{parts}".encode()).hexdigest()[:16]
    return f"{src.name}-{h}"


def _cached(key: str, build):
    path = cache_dir() / f"{key}.safetensors"
    if path.is_file():
        try:
            return load_file(str(path))
        except Exception:              # a broken cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
    tensors = build()
    try:
        atomic_write(path, lambda tmp: save_file(tensors, tmp))
    except OSError:
        pass                           # read-only checkout: just don't cache
    return tensors


# --- images ---------------------------------------------------------------------------------------------------
def _iter_image_files(src: Path):
    """(name, bytes) of every image in a folder, zip or tar(.gz), sorted by name."""
    if src.is_dir():
        for p in sorted(src.rglob("*")):
            if p.suffix.lower() in IMAGE_EXTS:
                yield str(p.relative_to(src)), p.read_bytes()
    elif zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as z:
            for n in sorted(z.namelist()):
                if n.lower().endswith(IMAGE_EXTS):
                    yield n, z.read(n)
    elif tarfile.is_tarfile(src):
        with tarfile.open(src) as t:
            members = sorted((m for m in t.getmembers() if m.isfile() and m.name.lower().endswith(IMAGE_EXTS)),
                             key=lambda m: m.name)
            for m in members:
                yield m.name, t.extractfile(m).read()
    else:
        raise DataError(f"{src}: not a folder, zip or tar of images")


def decode_image(data: bytes, resolution: int, channels: int) -> np.ndarray:
    """Bytes → uint8 C×res×res: centre-crop to a square, antialiased (Lanczos) resize."""
    img = Image.open(io.BytesIO(data))
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    s = min(w, h)
    if w != h:
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    if s != resolution:
        img = img.resize((resolution, resolution), Image.LANCZOS)
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def _decode_or_none(data: bytes, resolution: int, channels: int):
    try:
        return decode_image(data, resolution, channels)
    except Exception:
        return None                    # skip unreadable files rather than fail a whole dataset


def decode_workers() -> int:
    """Processes for decoding a large archive: $GAN_DEMO_DECODE_WORKERS, else every core this process may use."""
    try:
        return max(1, int(os.environ.get("GAN_DEMO_DECODE_WORKERS") or len(os.sched_getaffinity(0))))
    except (ValueError, AttributeError):
        return os.cpu_count() or 1


def _decode_many(blobs: list[bytes], resolution: int, channels: int) -> list:
    """decode_image over many files, in parallel processes when there are many files and several cores (the
    17,452 CelebA faces: ~22 s on one core). Forked workers run only PIL and numpy. Same order, same pixels."""
    workers = min(decode_workers(), len(blobs) // 500)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [_decode_or_none(b, resolution, channels) for b in blobs]
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_decode_or_none, blobs, [resolution] * len(blobs), [channels] * len(blobs),
                             chunksize=max(1, len(blobs) // (workers * 8))))


def _decode_archive(src: Path, resolution: int, channels: int, with_labels: bool) -> dict:
    images, labels, splits, classes = [], [], [], {}
    files = list(_iter_image_files(src))
    decoded = _decode_many([data for _, data in files], resolution, channels)
    for (name, _), img in zip(files, decoded):
        if img is None:
            continue
        images.append(img)
        parts = Path(name).parts
        splits.append(1 if "test" in parts else 0)
        if with_labels and len(parts) >= 2:
            labels.append(classes.setdefault(parts[-2], len(classes)))
    if not images:
        raise DataError(f"{src}: no readable images found")
    out = {"images": torch.from_numpy(np.stack(images)).contiguous(), "split": torch.tensor(splits, dtype=torch.uint8)}
    if with_labels and len(labels) == len(images):
        if set(classes) == set(CIFAR_CLASSES):     # keep CIFAR-10's standard class order
            remap = torch.tensor([CIFAR_CLASSES.index(c) for c in classes])
            out["labels"] = remap[torch.tensor(labels)]
        else:
            out["labels"] = torch.tensor(labels)
    return out


def _download(make, root: Path):
    """make() (a torchvision dataset that downloads into `root`); when it fails, the empty folders it made are
    removed again, so a wrong --data leaves nothing behind in someone's data folder."""
    created = missing_folders(root)
    try:
        return make()
    except BaseException:
        if created:
            inside = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
            remove_empty_folders([*inside, *created])
        raise


def load_mnist(data, split: str = "train") -> ImageData:
    from torchvision.datasets import MNIST      # only here: keeps `import training` light
    data = data_root("mnist") if data is None else Path(data)
    root = locate("mnist", data)
    download = root is None
    if download:
        root = data / "mnist"
    try:
        ds = _download(lambda: MNIST(str(root), train=split == "train", download=download), root) if download \
            else MNIST(str(root), train=split == "train")
    except Exception as e:
        raise DataError(f"MNIST not found under '{data}' and could not be downloaded ({type(e).__name__})",
                        "give --data a folder holding MNIST/raw/*-ubyte") from None
    return ImageData(ds.data.unsqueeze(1).contiguous(), ds.targets.long(), f"MNIST {split} ({root})")


def load_cifar10(data, split: str = "train") -> ImageData:
    data = data_root("cifar10") if data is None else Path(data)
    src = locate("cifar10", data)
    if src is None:
        from torchvision.datasets import CIFAR10
        root = data / "cifar10"
        try:
            ds = _download(lambda: CIFAR10(str(root), train=split == "train", download=True), root)
        except Exception as e:
            raise DataError(f"CIFAR-10 not found under '{data}' and could not be downloaded ({type(e).__name__})",
                            "give --data the cifar10-jpeg.tar.gz or an image folder") from None
        imgs = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return ImageData(imgs, torch.tensor(ds.targets), f"CIFAR-10 {split} (torchvision, {root})")
    t = _cached(_cache_key(src, 32, 3), lambda: _decode_archive(src, 32, 3, with_labels=True))
    keep = t["split"] == (1 if split == "test" else 0)
    if not keep.any():                           # an archive without train/test folders: all is train
        keep = torch.ones_like(keep, dtype=torch.bool)
    labels = t["labels"][keep] if "labels" in t else None
    return ImageData(t["images"][keep], labels, f"CIFAR-10 {split} ({src})")


def load_image_folder(data, resolution: int, channels: int = 3, split: str = "train",
                      holdout: int = CELEBA_HOLDOUT, kind: str = "celeba") -> ImageData:
    """Faces or any unlabelled images: the last `holdout` files (by name) form the 'holdout' split."""
    data = data_root(kind) if data is None else data
    src = locate(kind, data)
    if src is None:
        raise DataError(f"no images found at '{data}'", "give --data a folder, zip or tar of images")
    t = _cached(_cache_key(src, resolution, channels), lambda: _decode_archive(src, resolution, channels, False))
    imgs = t["images"]
    n_hold = holdout if len(imgs) > 2 * holdout else 0
    imgs = imgs[len(imgs) - n_hold:] if split in ("holdout", "test") else imgs[:len(imgs) - n_hold]
    return ImageData(imgs, None, f"{kind} {split} {resolution}px ({src})")


def load_text(data, split: str = "train", codec: TextCodec | None = None) -> TextData:
    data = data_root("text") if data is None else data
    src = locate("text", data)
    if src is None:
        raise DataError(f"no text corpus at '{data}'", "give --data a text file with one sentence per line")
    codec = codec or TextCodec()
    try:
        raw = src.read_text(encoding="utf-8", errors="replace").splitlines()
    except (OSError, IsADirectoryError) as e:
        raise DataError(f"{src}: cannot read ({e})") from None
    rows, lines = [], []
    for i, line in enumerate(raw):
        if (i % 10 == 9) != (split in ("holdout", "test")):
            continue
        ids = codec.encode(line)
        if ids is not None:
            rows.append(ids)
            lines.append(codec.decode(ids))
    if not rows:
        raise DataError(f"{src}: no usable lines (empty, or all longer than {codec.max_len - 2} characters)")
    return TextData(torch.tensor(rows), codec, lines, f"text {split} ({src})")


def load_dataset(dataset: str, data=None, split: str = "train"):
    """Dataset of a registry entry ('mnist', 'cifar10', 'celeba64', 'celeba128', 'text')."""
    if data is not None and not Path(data).exists():
        raise DataError(f"data path '{data}' does not exist")
    if dataset == "mnist":
        return load_mnist(data, split)
    if dataset == "cifar10":
        return load_cifar10(data, split)
    if dataset.startswith("celeba"):
        return load_image_folder(data, int(dataset[len("celeba"):]), 3, split)
    if dataset == "text":
        return load_text(data, split)
    raise DataError(f"unknown dataset '{dataset}'")
