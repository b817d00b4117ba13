"""A visitor's own picture, made ready for a model: read it safely, then crop and scale it to the model's input.

`read_image` accepts a path, bytes, a file object, a PIL image or a uint8/uint16/float array and returns an 8-bit
RGB or greyscale PIL image plus notes on what was converted (an animated file's first frame, 16 bits scaled to 8,
CMYK to RGB, transparency placed on a plain background, the camera's rotation applied). What cannot be used
(not an image, too big, too small, truncated) raises `ImageInputError` with one line meant for the person.
`fit_to_model` then centre-crops and resizes to the model's resolution; for the MNIST models it also makes the
picture look like an MNIST digit (light stroke on black, cropped to the ink, 20 px, centred by mass).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000         # width × height: a 40-megapixel photo is fine, a decompression bomb is not
MAX_SIDE = 20_000
MIN_SIDE = 8
MNIST_BOX = 20                  # MNIST digits fill a 20×20 box, centred by mass in 28×28
FORMATS = "PNG, JPEG, GIF, WebP, BMP or TIFF"


class ImageInputError(ValueError):
    """A picture that cannot be used; the message is one line for the person who sent it."""


def _describe(source) -> str:
    if isinstance(source, (str, Path)):
        return f"'{Path(source).name}'"
    return "the upload"


def _open(source) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    elif isinstance(source, (str, Path)):
        if Path(source).is_dir():
            raise ImageInputError(f"{_describe(source)} is a folder: give a picture file")
        if not Path(source).is_file():
            raise ImageInputError(f"{_describe(source)}: no such file")
    elif not hasattr(source, "read"):
        raise ImageInputError(f"expected a picture (file, bytes or image), got {type(source).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(source)       # lazy: reads the header only, so the size is checked before decoding
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        if isinstance(e, UnidentifiedImageError):
            raise ImageInputError(f"{_describe(source)} is not a picture this app can read (use {FORMATS})") from None
        raise ImageInputError(f"{_describe(source)} is too large (at most {MAX_PIXELS // 1_000_000} megapixels)") \
            from None
    except OSError as e:
        raise ImageInputError(f"cannot read {_describe(source)} ({e.strerror or e})") from None


def _from_array(a: np.ndarray) -> Image.Image:
    """H×W or H×W×{1,3,4} array: uint8 as is, uint16 scaled down, floats taken as 0…1."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageInputError(f"expected an H×W, H×W×3 or H×W×4 picture, got an array of shape {a.shape}")
    if a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ImageInputError("the picture holds NaN or infinite values")
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ImageInputError(f"expected uint8, uint16 or float pixels, got {a.dtype}")
    return Image.fromarray(a)


def _to_8_bit(img: Image.Image, notes: list[str]) -> Image.Image:
    """16- and 32-bit greyscale ("I;16", "I", "F") → "L", using the range the pixels actually span."""
    a = np.asarray(img)
    if img.mode.startswith("I;16") or (img.mode == "I" and a.max(initial=0) > 255):
        notes.append("16-bit picture: scaled to 8 bits")
        a = a.astype(np.float64) / 257.0
    elif img.mode == "F":
        notes.append("floating-point picture: scaled to 8 bits")
        lo, hi = float(a.min(initial=0)), float(a.max(initial=1))
        a = (a - lo) / (hi - lo or 1) * 255 if hi > 1 or lo < 0 else a * 255
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def _flatten_alpha(img: Image.Image, notes: list[str]) -> Image.Image:
    """Transparent pixels get a plain background that contrasts with the visible ones (black behind a light
    drawing, white behind a dark one), so a white-on-transparent stroke stays visible."""
    rgba = img.convert("RGBA")
    alpha = np.asarray(rgba)[..., 3].astype(np.float32) / 255
    if alpha.min() == 1.0:
        return rgba.convert("RGB")
    grey = np.asarray(rgba.convert("L"), dtype=np.float32)
    visible = alpha > 0.5
    light = grey[visible].mean() > 127 if visible.any() else False
    background = (0, 0, 0) if light else (255, 255, 255)
    notes.append(f"transparent picture: placed on a {'black' if light else 'white'} background")
    base = Image.new("RGB", rgba.size, background)
    base.paste(rgba, mask=rgba.getchannel("A"))
    return base


def read_image(source) -> tuple[Image.Image, list[str]]:
    """A picture → (8-bit "RGB" or "L" PIL image, notes on conversions); ImageInputError if it cannot be used."""
    notes: list[str] = []
    img = _open(source)
    w, h = img.size
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise ImageInputError(f"{_describe(source)} is too large: {w}×{h} pixels "
                              f"(at most {MAX_PIXELS // 1_000_000} megapixels, {MAX_SIDE} pixels a side)")
    if min(w, h) < MIN_SIDE:
        raise ImageInputError(f"{_describe(source)} is too small: {w}×{h} pixels (at least {MIN_SIDE} a side)")
    if getattr(img, "n_frames", 1) > 1:
        notes.append(f"animated picture ({img.n_frames} frames): used the first frame")
        img.seek(0)
    # 16-bit colour PNGs are decoded straight to 8 bits; say so, as for 16-bit greyscale below
    wide = any(";16" in str(t[3]) for t in getattr(img, "tile", None) or [])
    try:
        if hasattr(img, "draft") and img.format == "JPEG":
            img.draft(img.mode, (1024, 1024))   # decode big JPEGs at a reduced scale: far faster, same result
        img.load()
        img = ImageOps.exif_transpose(img)      # phone photos: apply the camera's rotation
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageInputError(f"{_describe(source)} is damaged or truncated ({str(e).splitlines()[0]})") from None
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = _to_8_bit(img, notes)
    elif wide:
        notes.append("16-bit picture: scaled to 8 bits")
    elif img.mode == "CMYK":
        notes.append("CMYK picture: converted to RGB")
        img = img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info) \
            or (img.mode in ("L", "RGB") and "transparency" in img.info):
        img = _flatten_alpha(img, notes)
    elif img.mode not in ("RGB", "L"):
        img = img.convert("RGB")                # palette, 1-bit, YCbCr, LAB, HSV …
    return img, notes


def _centre_square(img: Image.Image) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def _mnist_like(grey: Image.Image, notes: list[str]) -> Image.Image:
    """A greyscale picture of one digit → 28×28 as MNIST prepared its digits."""
    a = np.asarray(grey, dtype=np.float32) / 255
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if np.median(border) > 0.5:                 # dark ink on light paper: MNIST is a light stroke on black
        a = 1 - a
        border = 1 - border
        notes.append("dark-on-light picture: inverted to a light digit on black, as in MNIST")
    bg = float(np.median(border))               # paper grey or camera noise becomes black
    a = np.clip((a - bg) / max(1 - bg, 1e-6), 0, 1)
    ink = a > 0.2 * a.max() if a.max() > 0.15 else np.zeros_like(a, bool)
    if not ink.any():
        raise ImageInputError("the picture is blank: draw or upload one digit")
    ys, xs = np.nonzero(ink)
    a = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    a = a / a.max()
    h, w = a.shape
    f = MNIST_BOX / max(h, w)
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    small = np.asarray(Image.fromarray((a * 255).astype(np.uint8)).resize((nw, nh), Image.Resampling.LANCZOS),
                       dtype=np.float32)
    small = np.clip(small, 0, 255)
    # centre of mass to the middle of the 28×28 frame (clamped so the whole digit stays inside)
    mass = small.sum() or 1.0
    cy = (small.sum(1) * np.arange(nh)).sum() / mass
    cx = (small.sum(0) * np.arange(nw)).sum() / mass
    top = int(np.clip(round(14 - cy), 0, 28 - nh))
    left = int(np.clip(round(14 - cx), 0, 28 - nw))
    out = np.zeros((28, 28), np.float32)
    out[top:top + nh, left:left + nw] = small
    notes.append("digit cropped to its ink, scaled to 20 pixels and centred, as in MNIST")
    return Image.fromarray(out.astype(np.uint8), "L")


def fit_to_model(img: Image.Image, resolution: int, channels: int, digits: bool = False,
                 notes: list[str] | None = None) -> torch.Tensor:
    """An 8-bit PIL picture → 1×C×R×R float tensor in [-1, 1]: the model's input format. `digits` prepares it as
    MNIST did; otherwise the centre square is cropped and resized (Lanczos)."""
    notes = notes if notes is not None else []
    img = img.convert("L" if channels == 1 else "RGB")
    if digits:
        img = _mnist_like(img, notes)
        if img.size != (resolution, resolution):
            img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
    else:
        if img.width != img.height:
            notes.append(f"cropped to the centre square ({min(img.size)}×{min(img.size)})")
        img = _centre_square(img)
        if img.width > 4 * resolution:          # halve cheaply first: Lanczos over millions of pixels is slow
            img = img.reduce(max(1, img.width // (2 * resolution)))
        img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
    a = np.asarray(img, dtype=np.float32).reshape(resolution, resolution, channels)
    return torch.from_numpy(a.transpose(2, 0, 1).copy())[None] / 127.5 - 1.0


__all__ = ["ImageInputError", "MAX_PIXELS", "fit_to_model", "read_image"]
