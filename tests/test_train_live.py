"""The Train tab's job manager, gan_demo/app/jobs/, called directly: short MNIST runs that stream, stop, queue, crash,
time out and come back as "my run" models that only their own session can use."""
import hashlib
import json
import time

import pytest
import torch
from safetensors.torch import load_file

from gan_demo import load_generator
from gan_demo.app import my_runs, service
from gan_demo.app.jobs import LiveError, LiveTrainer

MAX_WAIT_S = 90


pytestmark = pytest.mark.usefixtures("one_thread")


def until(m, session, predicate, timeout=MAX_WAIT_S):
    """Poll like the page does until predicate(view); → the views seen."""
    views = [m.view(session)]
    deadline = time.monotonic() + timeout
    while not predicate(views[-1]):
        assert time.monotonic() < deadline, f"gave up waiting; last view: {views[-1]}"
        views.append(m.wait(session, views[-1].version, timeout=1.0))
    return views


def finished(v):
    return v.finished


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_short_run_streams_and_becomes_my_run_of_its_session_only(make_manager, tiny_weights, runs_dir):
    shipped = digest(tiny_weights)
    m = make_manager()
    first = m.start("alice", "mnist-gan", steps=30, batch=16, lr=2e-4)
    assert first.state in ("loading", "training") and first.total == 30 and first.queue_position == 0
    views = until(m, "alice", finished)
    end = views[-1]
    assert end.state == "finished" and end.step == 30 and end.usable, end
    steps = [h["step"] for h in end.history]
    assert steps == list(range(1, 31))                                   # a loss record per step of a short run
    assert all({"d_loss", "g_loss"} <= set(h) for h in end.history)
    assert any(v.state == "training" and 0 < v.step < 30 for v in views)  # progress arrived while it trained
    assert end.image is not None and end.image.shape == (8 * 30 + 2, 8 * 30 + 2, 1)
    assert end.steps_per_s > 0 and m.load()["training"] == 0

    # the files: in the session's folder under the runs root, never in weights/
    assert end.checkpoint.parent.parent == my_runs.session_dir("alice") and runs_dir in end.checkpoint.parents
    assert json.loads((end.checkpoint.parent / "run.json").read_text())["steps"] == 30
    assert digest(tiny_weights) == shipped
    g = load_generator(str(end.checkpoint), device="cpu")                # the download is a plain checkpoint
    assert g.entry.name == "mnist-gan" and g.sample(seeds=[0, 1]).shape == (2, 28, 28, 1)

    # "my run": usable by alice in the image menus, by nobody else, and not where it does not fit
    name = end.name
    assert my_runs.is_name(name) and service.my_run_choices("image", "alice")[0][1] == name
    assert service.my_run_choices("image", "bob") == [] and service.my_run_choices("text", "alice") == []
    store = service.ModelStore(device="cpu")
    batch = service.generate(name, 0, 4, store=store, session="alice")
    assert len(batch.images) == 4 and batch.images[0].size == (140, 140)
    for other in ("bob", None):
        with pytest.raises(ValueError, match="only in the browser session that trained it"):
            service.generate(name, 0, 4, store=store, session=other)
    with pytest.raises(ValueError, match="cannot be used here"):
        service.digits(name, [1], 0, 2, store=store, session="alice")
    for bad in ("my-run:../../etc", "my-run:" + "0" * 16, "my-run:" + end.run_id.upper()):
        with pytest.raises(ValueError, match="unknown model"):
            service.check_model(bad, "image", "alice")


def test_stop_ends_a_run_within_seconds_and_keeps_what_it_learned(make_manager):
    m = make_manager()
    m.start("alice", "mnist-gan", steps=2000, batch=16)
    until(m, "alice", lambda v: v.step >= 5)
    t0 = time.monotonic()
    m.stop("alice")
    end = until(m, "alice", finished)[-1]
    assert time.monotonic() - t0 < 10
    assert end.state == "stopped" and end.stop_reason == "you pressed Stop" and 5 <= end.step < 2000
    assert load_generator(str(end.checkpoint), device="cpu").entry.name == "mnist-gan"
    assert json.loads((end.checkpoint.parent / "run.json").read_text())["steps"] == end.step
    assert m.load()["training"] == 0 and m.stop("alice").state == "stopped"      # stopping again: no-op


def test_one_run_at_a_time_the_next_waits_in_line_and_a_full_line_is_refused(make_manager):
    m = make_manager(max_runs=1, max_queued=1)
    m.start("alice", "mnist-gan", steps=2000, batch=16)
    with pytest.raises(LiveError, match="already have a run in progress"):
        m.start("alice", "mnist-gan", steps=10, batch=16)
    waiting = m.start("bob", "mnist-gan", steps=10, batch=16)
    assert waiting.state == "queued" and waiting.queue_position == 1
    with pytest.raises(LiveError, match="the trainer is busy"):
        m.start("carol", "mnist-gan", steps=10, batch=16)
    assert m.load() == {"training": 1, "queued": 1, "max_runs": 1, "max_queued": 1}
    until(m, "alice", lambda v: v.step >= 1)
    m.stop("alice")
    bob = until(m, "bob", finished)                       # bob's run starts once alice's slot is free
    assert any(v.state == "queued" for v in bob) and bob[-1].state == "finished" and bob[-1].step == 10
    assert m.view("alice").state == "stopped" and m.load()["training"] == 0


def test_a_queued_run_can_leave_the_line(make_manager):
    m = make_manager(max_runs=1)
    m.start("alice", "mnist-gan", steps=2000, batch=16)
    m.start("bob", "mnist-gan", steps=10, batch=16)
    m.stop("bob")
    end = until(m, "bob", finished)[-1]
    assert end.state == "stopped" and end.step == 0 and not end.usable and "queue" in end.message
    assert m.load()["queued"] == 0
    m.stop("alice")
    until(m, "alice", finished)


def test_missing_data_is_a_message_and_frees_the_slot(make_manager, tmp_path):
    m = make_manager(data_root=tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    assert "text-wgangp" in m.models() and "cifar10-gan" not in m.models()    # CIFAR/faces need their data
    with pytest.raises(LiveError, match="cannot train 'cifar10-gan' here"):
        m.start("alice", "cifar10-gan")
    m.start("alice", "text-wgangp", steps=1, batch=8)
    end = until(m, "alice", finished)[-1]
    assert end.state == "failed" and "text/lines.txt" in end.error and "GAN_DEMO_DATA" in end.error
    assert not end.usable and m.load()["training"] == 0


def test_a_crash_mid_run_is_reported_and_frees_the_slot(make_manager, monkeypatch):
    m = make_manager(max_runs=1)
    real_step = LiveTrainer.train_step

    def flaky(self):
        if self.step == 3:
            raise RuntimeError("simulated crash in a training step")
        real_step(self)
    monkeypatch.setattr(LiveTrainer, "train_step", flaky)
    m.start("alice", "mnist-gan", steps=50, batch=16)
    end = until(m, "alice", finished)[-1]
    assert end.state == "failed" and end.error == "simulated crash in a training step" and not end.usable
    assert m.load()["training"] == 0
    monkeypatch.setattr(LiveTrainer, "train_step", real_step)
    m.start("bob", "mnist-gan", steps=5, batch=16)                # the slot is free for the next visitor
    assert until(m, "bob", finished)[-1].state == "finished"


def test_a_page_that_stops_polling_stops_its_run(make_manager):
    m = make_manager(heartbeat_s=1.5)
    m.start("alice", "mnist-gan", steps=2000, batch=16)
    time.sleep(4)                                          # no polling: the tab was closed
    end = until(m, "alice", finished)[-1]
    assert end.state == "stopped" and "stopped asking for updates" in end.stop_reason


def test_the_time_limit_stops_a_run_cleanly(make_manager):
    m = make_manager(time_limit_s=3)
    m.start("alice", "mnist-gan", steps=2000, batch=16)
    end = until(m, "alice", finished)[-1]
    assert end.state == "stopped" and "time limit" in end.stop_reason and end.usable
    assert end.elapsed_s < 15


def test_closing_the_tab_stops_the_run_and_deletes_its_files(make_manager, runs_dir):
    m = make_manager()
    m.start("alice", "mnist-gan", steps=2000, batch=16)
    until(m, "alice", lambda v: v.step >= 1)
    folder = my_runs.session_dir("alice")
    assert folder.is_dir()
    names = m.end_session("alice")
    assert len(names) == 1 and my_runs.is_name(names[0])
    deadline = time.monotonic() + 30
    while folder.exists() or m.view("alice") is not None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert m.load()["training"] == 0 and m.end_session("alice") == []


def test_settings_are_bounded(make_manager, tmp_path, monkeypatch):
    m = make_manager()
    lim = m.limits("mnist-gan")
    assert (lim.max_steps, lim.min_batch, lim.max_batch) == (2000, 8, 256)
    assert m.limits("celeba128-wgangp").max_steps < m.limits("mnist-dcgan").max_steps < lim.max_steps
    cases = [(dict(steps=0), "steps"), (dict(steps=2001), "steps"), (dict(steps=1.5), "steps"),
             (dict(batch=4), "batch size"), (dict(batch=257), "batch size"), (dict(lr=0.0), "learning rate"),
             (dict(lr=0.5), "learning rate"), (dict(lr=float("nan")), "learning rate"),
             (dict(model="../../weights/x"), "cannot train"), (dict(finetune="yes"), "fine-tune")]
    for kw, message in cases:
        with pytest.raises(LiveError, match=message):
            m.start("alice", **{"model": "mnist-gan", **kw})
    with pytest.raises(LiveError, match="no browser session"):
        m.start(None, "mnist-gan")
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))               # no shipped checkpoints here
    assert not m.can_finetune("mnist-gan")
    with pytest.raises(LiveError, match="no shipped checkpoint to fine-tune"):
        m.start("alice", "mnist-gan", finetune=True)
    assert m.load()["training"] == 0 and m.view("alice") is None


def test_fine_tuning_starts_from_the_shipped_checkpoint(make_manager, tiny_weights):
    m = make_manager()
    assert m.can_finetune("mnist-gan")
    m.start("alice", "mnist-gan", steps=2, batch=8, finetune=True)
    end = until(m, "alice", finished)[-1]
    config = json.loads((end.checkpoint.parent / "config.json").read_text())
    assert end.state == "finished" and end.finetune and config["init_from"] == str(tiny_weights / "mnist-gan.safetensors")


def test_chunked_runs_resume_between_calls_and_match_a_continuous_run(make_manager):
    """The ZeroGPU path (short calls, the state on disk between them), here on the CPU."""
    whole = make_manager()
    whole.start("alice", "mnist-gan", steps=40, batch=16)
    a = until(whole, "alice", finished)[-1]
    chunked = make_manager(chunk_s=0.6)
    chunked.start("bob", "mnist-gan", steps=40, batch=16)
    views = until(chunked, "bob", finished)
    b = views[-1]
    assert b.state == "finished" and b.step == 40
    assert any("GPU call" in v.message for v in views)                   # it took more than one call
    assert [h["step"] for h in b.history] == list(range(1, 41))
    ta, tb = load_file(str(a.checkpoint)), load_file(str(b.checkpoint))
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)    # resumed bit for bit


def test_two_runs_ended_in_the_same_minute_read_differently_in_the_menus(tmp_path):
    runs = [my_runs.MyRun(my_runs.name_of(i), i, "mnist-gan", tmp_path / "g.safetensors", 300, at, None)
            for i, at in (("a" * 16, "2026-12-05T21:16:05+00:00"), ("b" * 16, "2026-12-05T21:16:41+00:00"))]
    labels = [r.label for r in runs]
    assert labels[0] != labels[1] and all(t.startswith("my mnist-gan · ") for t in labels), labels
