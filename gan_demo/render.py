"""Turning arrays into pictures: image grids, animated GIFs, MP4 videos (the ffmpeg that the imageio-ffmpeg wheel
ships) and a small line plot (PIL only, no matplotlib)."""
from __future__ import annotations

import io
import math
import os
import tempfile

import numpy as np
from PIL import Image, ImageDraw


def to_uint8(x) -> np.ndarray:
    """Float images in [-1, 1], N×C×H×W (torch or numpy) → uint8 N×H×W×C."""
    x = x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float32)
    x = np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def make_grid(images: np.ndarray, ncol: int | None = None, pad: int = 2, fill: int = 255) -> np.ndarray:
    """uint8 N×H×W×C → one uint8 grid image (H'×W'×C)."""
    n, h, w, c = images.shape
    ncol = ncol or max(1, math.ceil(math.sqrt(n)))
    nrow = math.ceil(n / ncol)
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), fill, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = images[i]
    return grid


def to_pil(img: np.ndarray) -> Image.Image:
    return Image.fromarray(img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img)


def upscale(img: Image.Image, min_size: int = 256) -> Image.Image:
    """Nearest-neighbour enlargement so tiny images (28×28) are visible; never shrinks."""
    f = max(1, math.ceil(min_size / max(img.size)))
    return img if f == 1 else img.resize((img.width * f, img.height * f), Image.NEAREST)


def gif_bytes(frames: list[Image.Image], duration_ms: int | list[int] = 100, loop: int = 0) -> bytes:
    """An animated GIF; `duration_ms` for every frame, or one per frame."""
    buf = io.BytesIO()
    frames = [f.convert("RGB") for f in frames]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=loop)
    return buf.getvalue()


VIDEO_BLOCK = 16            # H.264 codes 16×16 blocks: a frame side that is a multiple avoids ffmpeg's resize


def video_factor(side: int, min_size: int = 256) -> int:
    """The whole factor that enlarges `side` to at least min_size pixels and to a multiple of VIDEO_BLOCK, so the
    enlargement is pure pixel repetition (28 → 336, 32 → 256, 64 → 256, 128 → 256)."""
    step = VIDEO_BLOCK // math.gcd(side, VIDEO_BLOCK)
    return max(step, math.ceil(min_size / side / step) * step)


def mp4_bytes(frames: list[Image.Image], fps: float = 12, min_size: int = 256) -> bytes:
    """H.264 MP4 of same-sized frames, each enlarged by nearest neighbour (crisp pixels, no blur) to at least
    min_size; near-lossless (CRF 12) so the blocks stay sharp; plays in browsers (yuv420p, faststart)."""
    import imageio_ffmpeg                   # only here: the rest of the library works without it
    if not frames:
        raise ValueError("a video needs at least one frame")
    w, h = frames[0].size
    f = video_factor(max(w, h), min_size)
    size = (w * f, h * f)
    if size[0] % VIDEO_BLOCK or size[1] % VIDEO_BLOCK:   # non-square frames: pad to whole blocks
        size = tuple(math.ceil(s / VIDEO_BLOCK) * VIDEO_BLOCK for s in size)
    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(path, size, fps=fps, codec="libx264", quality=None,
                                             output_params=["-crf", "12", "-preset", "veryfast",
                                                            "-movflags", "+faststart"],
                                             macro_block_size=1, ffmpeg_log_level="error")
        writer.send(None)                   # start ffmpeg
        for frame in frames:
            big = frame.convert("RGB").resize((w * f, h * f), Image.NEAREST)
            if big.size != size:
                canvas = Image.new("RGB", size, "white")
                canvas.paste(big)
                big = canvas
            writer.send(big.tobytes())
        writer.close()
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)


def line_plot(series: dict[str, list[tuple[float, float]]], title: str = "", size=(720, 400)) -> Image.Image:
    """A plain line chart: {label: [(x, y), …]} → PIL image with axes, ticks and a legend."""
    colors = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
    W, H = size
    left, right, top, bottom = 64, 16, 32, 40
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    pts = [p for s in series.values() for p in s if np.isfinite(p[1])]
    d.text((left, 8), title, fill="black")
    if not pts:
        d.text((W // 2 - 30, H // 2), "no data", fill="gray")
        return img
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    sx = lambda x: left + (x - x0) / (x1 - x0) * (W - left - right)
    sy = lambda y: H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom)
    d.rectangle([left, top, W - right, H - bottom], outline="black")
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        d.line([left - 4, sy(yv), left, sy(yv)], fill="black")
        d.text((4, sy(yv) - 6), f"{yv:.3g}", fill="black")
        xv = x0 + (x1 - x0) * i / 4
        d.line([sx(xv), H - bottom, sx(xv), H - bottom + 4], fill="black")
        d.text((sx(xv) - 12, H - bottom + 8), f"{xv:.0f}", fill="black")
    for k, (label, s) in enumerate(series.items()):
        c = colors[k % len(colors)]
        line = [(sx(x), sy(y)) for x, y in s if np.isfinite(y)]
        if len(line) > 1:
            d.line(line, fill=c, width=2)
        d.rectangle([W - right - 150, top + 8 + 16 * k, W - right - 140, top + 18 + 16 * k], fill=c)
        d.text((W - right - 134, top + 6 + 16 * k), label, fill="black")
    return img
