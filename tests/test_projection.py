"""Bring your own image: reading awkward pictures, finding their latent, saving it, the MP4 render, the CLI."""
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from gan_demo import load_generator
from gan_demo.checkpoint import save_checkpoint
from gan_demo.models import build_generator
from gan_demo.projection import load_latents
from gan_demo.registry import REGISTRY
from gan_demo.render import mp4_bytes, video_factor
from gan_demo.user_image import ImageInputError, fit_to_model, read_image

ROOT = Path(__file__).resolve().parent.parent


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png16(a: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (PIL writes 16-bit greyscale only): H×W (grey) or H×W×3/4 uint16."""
    h, w = a.shape[:2]
    color = {2: 0, 3: 2, 4: 6}[a.ndim if a.ndim == 2 else a.shape[2]]
    raw = b"".join(b"\0" + a[y].astype(">u2").tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def drawn_digit(size=200, ink="black", paper="white") -> Image.Image:
    """A '7' drawn with a thick pen, off centre, the way a person sketches it."""
    img = Image.new("RGB", (size, size), paper)
    d = ImageDraw.Draw(img)
    d.line([(40, 40), (150, 40), (80, 170)], fill=ink, width=14)
    return img


@pytest.fixture(scope="module")
def lively(tmp_path_factory):
    """A random-init 32×32 DCGAN whose first and last layers are scaled up, so different z give clearly different
    images (a plain random-init generator draws nearly the same picture for every z)."""
    e = REGISTRY["cifar10-dcgan"]
    torch.manual_seed(0)
    net = build_generator(e.arch, e.config)
    layers = [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    with torch.no_grad():
        layers[0].weight.mul_(20)
        layers[-1].weight.mul_(20)
    path = tmp_path_factory.mktemp("lively") / e.weights_file
    save_checkpoint(path, e, net.state_dict())
    return load_generator(str(path), device="cpu")


# --- reading pictures -----------------------------------------------------------------------------------------
def test_awkward_pictures_are_converted_with_a_note():
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "green", "blue")]
    gif = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    img, notes = read_image(gif)
    assert img.mode == "RGB" and np.asarray(img)[0, 0].tolist() == [255, 0, 0] and "first frame" in notes[0]

    grey16 = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)     # 0 … 65520
    img, notes = read_image(png16(grey16))
    a = np.asarray(img)
    assert img.mode == "L" and a.max() == 255 and a[32, 0] == round(32 * 64 * 16 / 257) and "16-bit" in notes[0]
    rgb16 = np.zeros((16, 16, 3), np.uint16)
    rgb16[..., 0], rgb16[..., 2] = 65535, 32896
    img, notes = read_image(png16(rgb16))
    assert np.asarray(img)[0, 0].tolist() == [255, 0, 128] and "16-bit" in notes[0]

    img, notes = read_image(encoded(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG"))
    assert img.mode == "RGB" and tuple(np.asarray(img)[5, 5]) == (255, 0, 0) and "CMYK" in notes[0]

    # a white stroke on a transparent background must stay visible: black behind it, and the reverse
    for stroke, expected_bg in ((255, 0), (0, 255)):
        rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
        rgba.paste((stroke, stroke, stroke, 255), (10, 10, 30, 30))
        img, notes = read_image(encoded(rgba, "PNG"))
        a = np.asarray(img.convert("L"))
        assert a[0, 0] == expected_bg and a[20, 20] == stroke and "transparent" in notes[0]


@pytest.mark.parametrize("data, needle", [
    (b"%PDF-1.4 not a picture at all", "not a picture"),
    (b"", "not a picture"),
    (encoded(Image.new("L", (10000, 5000)), "PNG"), "too large"),
    (encoded(Image.new("RGB", (4, 4)), "PNG"), "too small"),
    (encoded(Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 100, 3), np.uint8)), "PNG")[:2000],
     "truncated"),
])
def test_unusable_pictures_are_refused_in_one_line(data, needle):
    with pytest.raises(ImageInputError) as e:
        read_image(data)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_huge_pictures_are_refused_before_decoding():
    big = encoded(Image.new("L", (12000, 12000)), "PNG")        # a small file that would decode to 144 MB
    with pytest.raises(ImageInputError, match="too large"):
        read_image(big)


def test_arrays_and_missing_files():
    img, _ = read_image(np.full((20, 30, 3), 0.5, np.float32))
    assert img.size == (30, 20) and np.asarray(img)[0, 0, 0] == 128
    with pytest.raises(ImageInputError, match="no such file"):
        read_image("/no/such/picture.png")
    with pytest.raises(ImageInputError, match="shape"):
        read_image(np.zeros((4, 20, 20)))


def test_a_photo_is_centre_cropped_and_a_drawn_digit_prepared_as_mnist():
    photo = Image.new("RGB", (300, 100), "white")
    photo.paste((0, 0, 255), (100, 0, 200, 100))                 # the centre square is blue
    notes = []
    x = fit_to_model(photo, 32, 3, notes=notes)
    assert x.shape == (1, 3, 32, 32) and torch.allclose(x[0, :, 16, 16], torch.tensor([-1.0, -1.0, 1.0]))
    assert "centre square" in notes[0]
    notes = []
    d = fit_to_model(drawn_digit(), 28, 1, digits=True, notes=notes)[0, 0] + 1      # 0 = black
    ys, xs = (d > 0.5).nonzero().T
    assert d[0, 0] == 0 and 18 <= max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 <= 21   # fills 20 pixels
    pos = torch.arange(28.0)
    assert abs((d * pos[:, None]).sum() / d.sum() - 14) < 1 and abs((d * pos).sum() / d.sum() - 14) < 1
    assert any("inverted" in n for n in notes) and any("20 pixels" in n for n in notes)
    with pytest.raises(ImageInputError, match="blank"):
        fit_to_model(Image.new("L", (50, 50), 255), 28, 1, digits=True)


# --- projection -----------------------------------------------------------------------------------------------
def test_projection_finds_a_generated_picture(lively):
    target, other = lively.sample(seeds=[7, 8])
    far = np.abs(target.astype(float) - other).mean() / 255
    calls = []
    p = lively.project(Image.fromarray(target), steps=80, starts=4, progress=lambda *a: calls.append(a))
    assert far > 0.15 and p.mae < far / 20, (far, p.mae)
    assert p.latent.shape == (1, 100) and p.label is None and p.steps == 80 and not p.stopped
    assert [c[0] for c in calls] == list(range(1, 81)) and calls[-1][1] == 80
    # the reported reconstruction is exactly what the latent generates
    assert np.array_equal(lively.sample(latents=p.latent)[0], p.reconstruction)
    assert np.array_equal(p.target, target)           # a 32×32 picture is used as it is
    assert "PSNR" in p.error_text


def test_projection_is_repeatable_and_stops_on_request(lively):
    target = lively.sample(seeds=[3])[0]
    a = lively.project(target, steps=10, starts=2, seed=5)
    b = lively.project(target, steps=10, starts=2, seed=5)
    assert torch.equal(a.latent, b.latent)
    count = iter(range(100))
    p = lively.project(target, steps=50, starts=2, stop=lambda: next(count) >= 3)
    assert p.stopped and p.steps == 3 and "stopped early" in p.error_text
    with pytest.raises(ValueError, match="steps"):
        lively.project(target, steps=0)


def test_conditional_projection_reports_the_best_class(tiny_weights):
    g = load_generator("mnist-cdcgan", device="cpu")
    p = g.project(drawn_digit(), steps=16, starts=2)
    assert p.label in range(10) and sorted(p.class_errors) == list(range(10))
    assert p.class_errors[p.label] == min(p.class_errors.values())
    fixed = g.project(drawn_digit(), steps=4, starts=2, label=3)
    assert fixed.label == 3 and fixed.class_errors == {}
    with pytest.raises(ValueError, match="0…9"):
        g.project(drawn_digit(), label=10)
    with pytest.raises(ValueError, match="text model"):
        load_generator("text-wgangp", device="cpu").project(drawn_digit())


def test_a_saved_latent_is_accepted_by_sample(tiny_weights, tmp_path):
    g = load_generator("mnist-cdcgan", device="cpu")
    p = g.project(drawn_digit(), steps=4, starts=2, label=7)
    npy, meta = p.save(tmp_path / "me")
    info = json.loads(meta.read_text())
    assert info["model"] == "mnist-cdcgan" and info["label"] == 7 and np.load(npy).shape == (1, 100)
    assert np.array_equal(g.sample(latents=str(npy))[0], p.reconstruction)        # label from the JSON
    assert np.array_equal(g.sample(latents=np.load(npy), labels=[7])[0], p.reconstruction)
    with pytest.raises(ValueError, match="not mnist-dcgan"):
        load_generator("mnist-dcgan", device="cpu").sample(latents=npy)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="not a latent file"):
        load_latents(tmp_path / "junk.npy")
    z, _ = load_latents(npy)
    assert z.dtype == torch.float32
    np.savez(tmp_path / "two", a=np.zeros(3), b=np.ones(3))              # an .npz archive under a .npy name
    (tmp_path / "two.npz").rename(tmp_path / "two.npy")
    with pytest.raises(ValueError, match="an archive of several"):
        load_latents(tmp_path / "two.npy")
    meta.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_latents(npy)


def test_a_long_job_thread_gets_the_process_threads_back_after_a_projection_began_with_one():
    import threading
    from gan_demo.devices import PROCESS_THREADS, use_process_threads
    from gan_demo.projection import _cpu_threads
    if PROCESS_THREADS < 2:
        pytest.skip("torch runs on one thread here")
    started, seen = threading.Event(), {}

    def job():                                   # a Train-tab run begun while a projection holds 1 thread
        started.wait()
        seen["inherited"] = torch.get_num_threads()
        use_process_threads()
        seen["after"] = torch.get_num_threads()
    t = threading.Thread(target=job)
    with _cpu_threads(1):
        t.start()
        started.set()
        t.join()
    assert seen == {"inherited": 1, "after": PROCESS_THREADS}


# --- video ----------------------------------------------------------------------------------------------------
def test_mp4_frames_are_enlarged_crisply():
    import imageio_ffmpeg
    assert [s * video_factor(s) for s in (28, 32, 64, 128)] == [336, 256, 256, 256]
    checker = (np.indices((28, 28)).sum(0) % 2 * 255).astype(np.uint8)          # worst case for blurring
    frames = [Image.fromarray(checker if i % 2 else 255 - checker) for i in range(6)]
    data = mp4_bytes(frames, fps=6)
    assert data[4:8] == b"ftyp"
    path = ROOT / ".pytest-video.mp4"
    try:
        path.write_bytes(data)
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        first = np.frombuffer(next(reader), np.uint8).reshape(336, 336, 3)
        n = 1 + sum(1 for _ in reader)
    finally:
        path.unlink(missing_ok=True)
    assert meta["size"] == (336, 336) and n == 6
    # each source pixel is a 12×12 block: its centre keeps the pixel's value (no smoothing into neighbours)
    centres = first[6::12, 6::12, 0].astype(int)
    assert np.abs(centres - (255 - checker)).max() < 40


# --- command line ---------------------------------------------------------------------------------------------
def cli(*args, env=None, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=300)


def test_cli_project_writes_the_reconstruction_and_the_latent(tiny_weights_dir, tmp_path):
    env = {"GAN_DEMO_WEIGHTS_DIR": str(tiny_weights_dir)}
    drawn_digit().save(tmp_path / "seven.png")
    r = cli("project", "mnist-cdcgan", str(tmp_path / "seven.png"), "--steps", "4", "--starts", "2",
            "--out", str(tmp_path / "me"), env=env)
    assert r.returncode == 0, r.stderr
    assert "best-fitting class" in r.stdout and "mean pixel error" in r.stdout
    for name in ("me.png", "me-compare.png", "me.npy", "me.json"):
        assert (tmp_path / name).is_file(), name
    assert Image.open(tmp_path / "me.png").size == (28, 28)
    r = cli("project", "mnist-cdcgan", str(tmp_path / "seven.png"), "--steps", "2", "--starts", "1", "--label", "7",
            "--out", str(tmp_path / "again.png"), env=env)          # a file name given as the prefix
    assert r.returncode == 0 and (tmp_path / "again.png").is_file() and (tmp_path / "again-compare.png").is_file()
    assert not (tmp_path / "again.png.png").exists()
    (tmp_path / "notes.txt").write_text("hello")
    r = cli("project", "mnist-cdcgan", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "bad"), env=env)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "not a picture" in lines[0]
    assert not list(tmp_path.glob("bad*"))


def test_cli_list_shows_what_is_shipped(tiny_weights_dir, tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "mnist-gan.safetensors").write_bytes((tiny_weights_dir / "mnist-gan.safetensors").read_bytes())
    r = cli("list", env={"GAN_DEMO_WEIGHTS_DIR": str(folder)})
    rows = {l.split()[0]: l for l in r.stdout.splitlines()}
    assert r.returncode == 0 and len(rows) == len(REGISTRY) and str(folder) in r.stderr
    assert rows["mnist-gan"].split()[3] == "shipped" and "not measured" in rows["mnist-gan"]
    assert rows["mnist-dcgan"].split()[3:] == ["not", "shipped"]


def test_cli_train_will_not_mix_two_runs(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text('{"step": 10}\n')
    (run / "my-notes.txt").write_text("keep me")
    empty = tmp_path / "empty-data"
    empty.mkdir()
    r = cli("train", "--model", "mnist-gan", "--out", str(run), "--data", str(empty))
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "--resume" in lines[0] and "--force" in lines[0]
    assert (run / "log.jsonl").is_file()
    # --force deletes the run's files (not others), then this run fails on its data and leaves the folder empty
    r = cli("train", "--model", "mnist-gan", "--out", str(run), "--data", str(empty), "--force")
    assert r.returncode == 2 and "MNIST" in r.stderr
    assert sorted(p.name for p in run.iterdir()) == ["my-notes.txt"]


def test_a_failed_cli_run_leaves_no_folder(tmp_path):
    empty = tmp_path / "empty-data"
    empty.mkdir()
    r = cli("train", "--model", "mnist-gan", "--out", str(tmp_path / "runs" / "new"), "--data", str(empty))
    assert r.returncode == 2 and not (tmp_path / "runs").exists()
