"""The training loop: exact resume, short real-data runs, the callback's stop, the run log, export."""
import io
import json
import tarfile
import threading
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from gan_demo import load_generator, read_checkpoint, save_checkpoint
from gan_demo.loss_history import MAX_POINTS, read_loss_history
from gan_demo.models import build_generator
from gan_demo.registry import REGISTRY
from training.data import ImageData, load_dataset, load_image_folder, load_text
from training.export import export_run
from training.loop import Trainer
from training.runlog import RunFolder


def _mnist_slice(mnist_root, n=256):
    d = load_dataset("mnist", mnist_root)
    return ImageData(d.images[:n], d.labels[:n], "MNIST slice")


@pytest.mark.parametrize("name", ["mnist-cdcgan", "mnist-wgangp"])
def test_resume_is_exact(tmp_path, mnist_root, name):
    data = _mnist_slice(mnist_root)
    kw = dict(batch=8, device="cpu", log_every=2, sample_every=100, progress=False)
    full = Trainer(REGISTRY[name], data, tmp_path / "full", steps=6, **kw)
    full.train()
    half = Trainer(REGISTRY[name], data, tmp_path / "half", steps=3, **kw)
    half.train()
    resumed = Trainer(REGISTRY[name], data, tmp_path / "half", steps=6, **kw)
    resumed.load_resume()
    assert resumed.step == 3
    resumed.train()
    for part in ("G", "D", "G_ema"):
        a, b = getattr(full, part).state_dict(), getattr(resumed, part).state_dict()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{part}.{k}"
    assert [r["step"] for r in resumed.run.read_log()] == [2, 3, 4, 6]   # step 3 ended the first half


def test_a_resumed_run_trains_at_the_rates_it_is_given_not_the_saved_ones(tmp_path, mnist_root):
    """A plan may change a run's rates when extending it; the saved optimisers must not bring the old ones back."""
    data = _mnist_slice(mnist_root)
    kw = dict(batch=8, device="cpu", log_every=2, sample_every=100, progress=False)
    Trainer(REGISTRY["mnist-wgangp"], data, tmp_path / "run", steps=2, **kw).train()
    faster = REGISTRY["mnist-wgangp"].with_recipe(lr_g=2e-4, lr_d=3e-4)
    resumed = Trainer(faster, data, tmp_path / "run", steps=4, **kw)
    resumed.load_resume()
    assert [g["lr"] for g in resumed.opt_g.param_groups] == [2e-4]
    assert [g["lr"] for g in resumed.opt_d.param_groups] == [3e-4]
    assert resumed.opt_d.state       # the moments were restored: only the rates come from the recipe


def test_a_lazy_gradient_penalty_is_taken_on_every_kth_critic_step_weighted_k_times(tmp_path, mnist_root,
                                                                                     monkeypatch):
    import training.loop
    data = _mnist_slice(mnist_root)
    kw = dict(batch=8, device="cpu", log_every=2, sample_every=100, progress=False)
    lazy = REGISTRY["mnist-wgangp"].with_recipe(gp_every=4)          # 5 critic steps per generator step
    taken, penalty = [], training.loop.gradient_penalty
    monkeypatch.setattr(training.loop, "gradient_penalty", lambda *a, **k: taken.append(1) or penalty(*a, **k))
    full = Trainer(lazy, data, tmp_path / "full", steps=6, **kw)
    full.train()
    assert len(taken) == 8                                   # critic steps 0, 4, 8, …, 28 of 30
    assert all(r["gp"] > 0 for r in full.run.read_log())     # the log shows the last penalty taken, never a 0
    # resumed at step 3 (critic step 15, between two penalties), it trains exactly as the unbroken run
    Trainer(lazy, data, tmp_path / "half", steps=3, **kw).train()
    resumed = Trainer(lazy, data, tmp_path / "half", steps=6, **kw)
    resumed.load_resume()
    resumed.train()
    for k, v in full.D.state_dict().items():
        assert torch.equal(v, resumed.D.state_dict()[k]), k
    # a penalised step weighs the penalty k times: the first critic step equals one with λ·k on every step
    one = [Trainer(e, data, tmp_path / name, **kw) for e, name in (
        (lazy, "lazy"), (REGISTRY["mnist-wgangp"].with_recipe(gp_weight=40.0), "heavy"))]
    for t in one:
        t.warm_up_discriminator(1)
    for k, v in one[0].D.state_dict().items():
        assert torch.equal(v, one[1].D.state_dict()[k]), k


def test_the_r1_penalty_is_taken_on_real_images_weighted_and_logged(tmp_path, mnist_root, monkeypatch):
    import training.loop
    data = _mnist_slice(mnist_root)
    kw = dict(batch=8, device="cpu", log_every=2, sample_every=100, progress=False)
    taken, penalty = [], training.loop.r1_penalty
    monkeypatch.setattr(training.loop, "r1_penalty", lambda *a, **k: taken.append(a[1]) or penalty(*a, **k))
    r1 = REGISTRY["mnist-gan"].with_recipe(r1_gamma=10.0, gp_every=2)
    t = Trainer(r1, data, tmp_path / "r1", steps=4, **kw)
    t.train()
    assert len(taken) == 2 and all(x.shape == (8, 1, 28, 28) for x in taken)     # D steps 0 and 2, real batches
    assert all(r["r1"] > 0 and "gp" not in r for r in t.run.read_log())
    # the penalty changes D's step, and γ·k on every other step is γ·2 on the first
    first = [Trainer(e, data, tmp_path / name, **kw) for e, name in (
        (r1, "lazy"), (REGISTRY["mnist-gan"].with_recipe(r1_gamma=20.0), "every"), (REGISTRY["mnist-gan"], "none"))]
    for tr in first:
        tr.warm_up_discriminator(1)
    lazy, every, none = (tr.D.state_dict() for tr in first)
    assert all(torch.equal(v, every[k]) for k, v in lazy.items())
    assert not all(torch.equal(v, none[k]) for k, v in lazy.items())


def test_top_k_share_falls_from_the_whole_batch_to_its_floor():
    plain, top = REGISTRY["mnist-gan"].recipe, REGISTRY["mnist-gan"].with_recipe(top_k=0.5).recipe
    assert [plain.top_k_share(e) for e in (0, 10, 1000)] == [1.0, 1.0, 1.0]
    assert top.top_k_share(0) == 1.0 and abs(top.top_k_share(1) - 0.99) < 1e-12 and top.top_k_share(1000) == 0.5


def test_top_k_training_feeds_the_generator_only_its_best_scored_fakes(tmp_path, mnist_root, monkeypatch):
    import training.loop
    data = _mnist_slice(mnist_root)                     # 256 images, batch 8: an epoch is 32 steps
    judged, lost, g_loss = [], [], training.loop.g_loss
    monkeypatch.setattr(training.loop, "g_loss", lambda kind, s: lost.append(s.detach()) or g_loss(kind, s))
    judge = Trainer._judge
    monkeypatch.setattr(Trainer, "_judge", lambda self, *a: judged.append(judge(self, *a)) or judged[-1])
    entry = REGISTRY["mnist-gan"].with_recipe(top_k=0.5, top_k_decay=0.01)  # 0.01^(step/32): 1, 0.87, …, 0.5 from 5
    t = Trainer(entry, data, tmp_path / "topk", batch=8, steps=8, device="cpu", log_every=4, sample_every=100,
                progress=False)
    t.train()
    g_scores = [s for s, _ in judged[1::2]]              # D's step judges first, then the generator's step
    assert [len(s) for s in lost] == [8, 7, 6, 5, 4, 4, 4, 4]
    for full, kept in zip(g_scores, lost):
        assert torch.equal(kept.sort(descending=True).values, full.detach().sort(descending=True).values[:len(kept)])
    # without top_k the generator's loss reads the whole batch
    lost.clear()
    Trainer(REGISTRY["mnist-gan"], data, tmp_path / "all", batch=8, steps=3, device="cpu", log_every=4,
            sample_every=100, progress=False).train()
    assert [len(s) for s in lost] == [8, 8, 8]


def test_short_training_on_real_mnist_exports_a_loadable_generator(tmp_path, mnist_root, monkeypatch):
    data = _mnist_slice(mnist_root, 512)
    events = []
    t = Trainer(REGISTRY["mnist-gan"], data, tmp_path / "run", steps=30, batch=32, lr=5e-4, device="cpu",
                log_every=10, sample_every=15, progress=False, callback=events.append)
    t.train()
    run = tmp_path / "run"
    for f in ("config.json", "log.jsonl", "resume.pt", "generator.safetensors", "progress.gif", "losses.png"):
        assert (run / f).is_file(), f
    assert len(list((run / "samples").glob("step_*.png"))) == 3     # steps 0, 15, 30
    assert [e["type"] for e in events].count("log") == 3 and events[-1]["type"] == "done"
    logs = t.run.read_log()
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in logs)
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path / "weights"))
    dest = export_run(run)
    assert dest == tmp_path / "weights" / "mnist-gan.safetensors" and dest.with_suffix(".md").is_file()
    g = load_generator("mnist-gan")
    assert g.sample(seeds=[0, 1]).shape == (2, 28, 28, 1)
    assert g.directions.shape == (10, 100)
    assert g.training_info["steps"] == 30 and "CPU" in g.training_info["hardware"]
    # the overrides are part of the checkpoint's entry, so its card says how it was trained
    entry, _, _ = read_checkpoint(dest)
    assert (entry.recipe.batch, entry.recipe.lr_g, entry.recipe.lr_d) == (32, 5e-4, 5e-4)
    card = dest.with_suffix(".md").read_text()
    assert "batch 32 (registry 64)" in card and "G learning rate 0.0005 (registry 0.0002)" in card, card


def _write_log(run_dir, records, cut_last=False):
    """A run's log.jsonl as given (duplicates, order and all), optionally ending in a line cut by a kill."""
    run_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records) + ('{"step": 99' if cut_last else "")
    (run_dir / "log.jsonl").write_text(text)


# two workers briefly on one run (as in the CPU campaign's mnist-lsgan log): 8200 written early, then again later
TWO_WRITERS = ([{"step": s, "d_loss": 0.1, "g_loss": 0.3} for s in (8000, 8050)]
               + [{"step": 8200, "d_loss": 0.9, "g_loss": 5.0}]
               + [{"step": s, "d_loss": 0.1, "g_loss": 0.3} for s in (8100, 8150, 8200, 8250)])


def test_read_log_keeps_the_last_record_per_step(tmp_path):
    run = RunFolder(tmp_path / "run")
    _write_log(run.path, TWO_WRITERS, cut_last=True)
    log = run.read_log()
    assert [r["step"] for r in log] == [8000, 8050, 8100, 8150, 8200, 8250]     # one per step, in step order
    assert all(r["g_loss"] == 0.3 for r in log)                                  # step 8200: the later record
    run.truncate_log(8150)
    assert [r["step"] for r in run.read_log()] == [8000, 8050, 8100, 8150]
    assert run.loss_plot("x").size == (720, 400)


def test_truncating_the_log_is_atomic_and_a_restart_clears_text_samples_too(tmp_path, monkeypatch):
    import training.runlog as runlog
    run = RunFolder(tmp_path / "run").create()
    _write_log(run.path, TWO_WRITERS)
    before = run.log_file.read_text()

    def killed(path, write):
        raise KeyboardInterrupt            # the process dies before the new log replaces the old one
    monkeypatch.setattr(runlog, "atomic_write", killed)
    with pytest.raises(KeyboardInterrupt):
        run.truncate_log(8150)
    assert run.log_file.read_text() == before                # not emptied
    (run.samples / "step_000500.txt").write_text("an old sentence\n")
    assert run.holds_run()
    run.clear()
    assert not run.holds_run() and not list(run.samples.iterdir())


def test_export_ships_the_loss_history_drawn_from_the_deduplicated_log(tmp_path, monkeypatch):
    run = tmp_path / "run"
    ours = {r["step"] for r in TWO_WRITERS}
    log = [{"step": 50 * i, "d_loss": 1.0, "g_loss": 2.0, "img_per_s": 300.0} for i in range(1, 2501)
           if 50 * i not in ours]
    _write_log(run, log[:159] + TWO_WRITERS + log[159:])                 # steps 50 … 7950, the two writers, 8300 …
    e = REGISTRY["mnist-gan"]
    save_checkpoint(run / "generator.safetensors", e, build_generator(e.arch, e.config).state_dict())
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path / "weights"))
    staged = export_run(run, to=tmp_path / "staged" / "mnist-gan.safetensors", directions=False)
    assert sorted(p.name for p in staged.parent.iterdir()) == ["mnist-gan.md", "mnist-gan.safetensors"]
    dest = export_run(run, directions=False)
    h = read_loss_history(tmp_path / "weights" / "mnist-gan-losses.json")
    assert h.records == 2500 and len(h.step) <= MAX_POINTS and h.bucket_steps > 1
    assert list(h.series) == ["d_loss", "g_loss"] and max(h.series["g_loss"]) == 2.0   # no 5.0 from the stale 8200
    assert Image.open(dest.with_name("mnist-gan-losses.png")).size == (720, 400)
    assert not dest.with_name("mnist-gan-progress.gif").exists()                        # the run has none


def test_callback_can_stop_a_run_cleanly(tmp_path, mnist_root):
    data = _mnist_slice(mnist_root)
    stop = threading.Event()

    def cb(event):
        return event["type"] == "log" and event["step"] >= 4      # True asks the trainer to stop

    t = Trainer(REGISTRY["mnist-dcgan"], data, tmp_path / "r", steps=1000, batch=8, device="cpu", log_every=2,
                sample_every=500, progress=False, callback=cb, stop_event=stop)
    path = t.train()
    assert stop.is_set() and t.step == 4
    entry, _, meta = read_checkpoint(path)
    assert meta["training"]["steps"] == 4


def test_text_gan_trains_a_few_steps(tmp_path):
    lines = ["The cat sat on the mat.", "It's a fine day, isn't it?", "Go home now!", "We'll see."] * 8
    src = tmp_path / "lines.txt"
    src.write_text("\n".join(lines))
    data = load_text(src)
    assert data.tokens.shape[1] == 64
    x, _ = data.batch(4, torch.Generator().manual_seed(0), smoothing=0.1)
    assert x.shape == (4, len(data.codec), 64)
    assert torch.allclose(x.sum(1)[x.sum(1) > 0], torch.ones(1))           # smoothed one-hots still sum to 1
    entry = REGISTRY["text-wgangp"]
    small = entry.with_config(dim=32, n_blocks=2)
    t = Trainer(small, data, tmp_path / "run", steps=3, batch=8, device="cpu", log_every=1, sample_every=3,
                progress=False)
    t.train()
    g = load_generator(str(tmp_path / "run" / "generator.safetensors"))
    assert len(g.sample_text(seeds=[0, 1, 2])) == 3
    assert (tmp_path / "run" / "samples" / "step_0000003.txt").is_file()
    assert "wasserstein" in t.run.read_log()[-1]


def _png(color, size=40):
    buf = io.BytesIO()
    Image.new("RGB", (size, size + 10), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["folder", "zip", "tar"])
def test_image_folder_zip_and_tar(tmp_path, kind, monkeypatch):
    monkeypatch.setenv("GAN_DEMO_CACHE", str(tmp_path / "cache"))
    files = {f"faces/{i:03d}.png": _png((i * 20, 0, 0)) for i in range(5)}
    if kind == "folder":
        for name, data in files.items():
            (tmp_path / name).parent.mkdir(exist_ok=True)
            (tmp_path / name).write_bytes(data)
        src = tmp_path / "faces"
    elif kind == "zip":
        src = tmp_path / "faces.zip"
        with zipfile.ZipFile(src, "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
    else:
        src = tmp_path / "faces.tar.gz"
        with tarfile.open(src, "w:gz") as t:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    d = load_image_folder(src, 32, holdout=0)
    assert d.images.shape == (5, 3, 32, 32) and d.images.dtype == torch.uint8
    assert d.images[3, 0].float().mean().item() == pytest.approx(60, abs=1)
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1          # decoded once, cached
    assert torch.equal(load_image_folder(src, 32, holdout=0).images, d.images)


def test_text_holdout_is_disjoint(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("\n".join(f"line number {i}" for i in range(50)))
    train, hold = load_text(src), load_text(src, "holdout")
    assert len(train) == 45 and len(hold) == 5 and not set(train.lines) & set(hold.lines)
