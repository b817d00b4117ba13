"""Reliability of the app's mechanisms, each called directly (scripts/attack_test.py attacks a live app):
training bounds (global, per client, abandoned runs), disk (what a run leaves, the quota, a killed server's
leftovers), a session's private files, request and upload size limits before parsing."""
import os
import subprocess
import sys
import time

import pytest
import torch

from gan_demo.app import http_limits, my_runs
from gan_demo.app.jobs import LiveError, TrainingManager
from gan_demo.app.jobs.runner import one_line

MAX_WAIT_S = 90


pytestmark = pytest.mark.usefixtures("one_thread")


def until_done(m, session):
    view, deadline = m.view(session), time.monotonic() + MAX_WAIT_S
    while not view.finished:
        assert time.monotonic() < deadline, view
        view = m.wait(session, view.version, timeout=1.0)
    return view


# --- training can never starve the app --------------------------------------------------------------------------
def test_the_trainer_refuses_at_once_beyond_its_global_and_per_client_bounds(make_manager):
    m = make_manager(max_runs=1, max_queued=2, max_per_client=2)
    m.start("s0", "mnist-gan", steps=2000, batch=16, client="1.1.1.1")
    m.start("s1", "mnist-gan", steps=2000, batch=16, client="1.1.1.1")
    t = time.perf_counter()
    with pytest.raises(LiveError, match="your address already has 2 training runs"):
        m.start("s2", "mnist-gan", steps=10, batch=16, client="1.1.1.1")   # a new session, the same address
    m.start("s3", "mnist-gan", steps=10, batch=16, client="2.2.2.2")
    for i in range(20):                                                     # a flood from many addresses
        with pytest.raises(LiveError, match="the trainer is busy"):
            m.start(f"f{i}", "mnist-gan", steps=10, batch=16, client=f"3.3.3.{i}")
    assert time.perf_counter() - t < 2                                      # refused at once, never queued
    assert m.load() == {"training": 1, "queued": 2, "max_runs": 1, "max_queued": 2}


def test_the_train_endpoint_never_waits_in_gradios_shared_queue(tiny_weights, mnist_root, monkeypatch):
    """/train has no concurrency limit of its own (so no request waits in the queue every endpoint shares); the
    generation endpoints have their own concurrency group."""
    monkeypatch.setenv("GAN_DEMO_DATA", str(mnist_root.parent))
    from gan_demo.app.ui import build_app
    demo = build_app()
    fns = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    assert fns["train"].concurrency_limit is None and fns["train_stop"].concurrency_limit is None
    assert fns["generate"].concurrency_id != fns["train"].concurrency_id
    assert fns["generate"].concurrency_limit is not None


def test_a_stream_nobody_reads_for_a_while_counts_as_abandoned():
    from gan_demo.app.ui.train import ABANDON_S, Abandoned
    now = [0.0]
    gone, reading = Abandoned(lambda: now[0]), Abandoned(lambda: now[0])
    for t, unread_gone, unread_reading in [(0, 1, 1), (5, 2, 0), (15, 2, 1), (ABANDON_S + 1, 3, 0),
                                           (ABANDON_S + 30, 3, 1), (ABANDON_S + 60, 4, 0)]:
        now[0] = t
        assert gone(unread_gone) == (t > ABANDON_S) and not reading(unread_reading)
    assert not Abandoned()(None)                  # gradio's queue unreadable: the heartbeat alone applies


def test_error_messages_shown_to_visitors_carry_no_server_paths():
    e = ValueError("cannot fine-tune from /srv/app/weights/mnist-gan.safetensors: no data under /srv/data/mnist "
                   "(see https://example.org/a/b)")
    assert one_line(e) == "cannot fine-tune from mnist-gan.safetensors: no data under mnist (see " \
                          "https://example.org/a/b)"


# --- disk -----------------------------------------------------------------------------------------------------
def test_a_finished_browser_run_keeps_its_generator_only(make_manager):
    m = make_manager()
    m.start("alice", "mnist-gan", steps=4, batch=8)
    end = until_done(m, "alice")
    assert end.usable
    kept = {p.name for p in end.checkpoint.parent.iterdir()}
    assert kept <= {"generator.safetensors", "run.json", "config.json", "log.jsonl"}, kept
    assert "generator.safetensors" in kept and end.checkpoint.is_file()
    assert "resume.pt" not in kept and "samples" not in kept


def test_the_runs_folder_quota_evicts_the_oldest_finished_runs(make_manager, runs_dir):
    m = make_manager()
    names = []
    for session in ("a", "b", "c"):
        m.start(session, "mnist-gan", steps=2, batch=8)
        names.append(until_done(m, session).name)
        if session == "a":
            m.quota_mb = 1.5 * m.disk_mb()        # room for one finished run, not two
        time.sleep(0.05)
    left = [p.name for p in runs_dir.glob("*/*") if my_runs.RUN_ID.fullmatch(p.name)]
    assert left == [names[-1][len(my_runs.PREFIX):]], left          # a, then b, evicted; the newest stays
    assert m.view("a") is None and m.view("b") is None               # an evicted run is gone for its session too
    assert m.view("c").finished


def test_no_run_starts_while_runs_in_progress_fill_the_quota(make_manager):
    m = make_manager(quota_mb=0.0001, max_runs=1, max_queued=4)
    m.start("a", "mnist-gan", steps=2000, batch=16)
    time.sleep(3)                                 # it has written files by now
    with pytest.raises(LiveError, match="disk space for training runs"):
        m.start("b", "mnist-gan", steps=10, batch=16)


def test_a_killed_servers_leftovers_are_deleted_at_the_next_start(runs_dir, mnist_root):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    for owner in (dead, None, str(os.getpid())):
        folder = runs_dir / os.urandom(8).hex() / os.urandom(8).hex()
        folder.mkdir(parents=True)
        (folder / "resume.pt").write_bytes(b"x" * 1000)
        if owner:
            (folder.parent / ".server").write_text(owner)
    m = TrainingManager(data_root=mnist_root, device="cpu")
    assert m.clean_leftovers() == 2                         # the dead server's and the unmarked folder
    assert len(list(runs_dir.iterdir())) == 1               # this process's own stays


# --- a session's private files --------------------------------------------------------------------------------
def test_a_sessions_files_live_in_a_folder_named_by_no_one_else_and_go_with_the_session():
    from gan_demo.app.ui import common
    a, b = common.private_dir("session-a"), common.private_dir("session-b")
    assert a != b and a == common.private_dir("session-a") and a.parent == common.PRIVATE
    assert len(a.name) >= 32 and "session" not in a.name
    path = common.temp_file(b"a trained run", ".safetensors", a)
    assert os.path.dirname(path) == str(a)
    common.drop_private("session-a")
    assert not a.exists() and common.private_dir("session-a") != a


def test_private_folders_of_dead_servers_are_cleaned():
    from gan_demo.app.ui import common
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    leftover = common.TEMP / f"private-{dead}" / "token"
    leftover.mkdir(parents=True)
    (leftover / "x.safetensors").write_bytes(b"x")
    mine = common.private_dir("someone")
    mine.mkdir(parents=True, exist_ok=True)
    common.clean_private_leftovers()
    assert not leftover.parent.exists() and mine.exists()
    common.drop_private("someone")


def test_the_client_address_is_the_peer_or_behind_a_private_proxy_the_forwarded_one():
    from types import SimpleNamespace

    from gan_demo.app.ui.common import client_of
    req = lambda peer, fwd=None: SimpleNamespace(client=SimpleNamespace(host=peer),
                                                 headers={"x-forwarded-for": fwd} if fwd else {})
    assert client_of(req("8.8.8.8", "1.2.3.4")) == "8.8.8.8"         # a public peer cannot claim another address
    assert client_of(req("10.0.0.2", "1.2.3.4, 10.0.0.9")) == "1.2.3.4"
    assert client_of(req("127.0.0.1")) == "127.0.0.1"
    # a client cannot claim a fresh address: the proxy appends the one it saw, and that one counts
    assert client_of(req("10.0.0.2", "6.6.6.6, 1.2.3.4")) == "1.2.3.4"
    assert client_of(req("10.0.0.2", "6.6.6.6, 1.2.3.4, 10.0.0.9")) == "1.2.3.4"
    assert client_of(req("10.0.0.2", "10.1.1.1")) == "10.1.1.1"        # all internal: the first


# --- request and upload sizes -----------------------------------------------------------------------------------
@pytest.fixture
def limited_app():
    """A FastAPI app (as gradio's is) behind the limit: a JSON route and an upload route that count what they got."""
    from fastapi import FastAPI, Request
    seen = []

    def make(uploads: bool):
        app = FastAPI(middleware=[http_limits.Middleware(http_limits.BodyLimit, max_body=1000, max_upload=5000,
                                                         uploads=uploads)])

        @app.post("/gradio_api/call/generate")
        async def call(body: dict):               # FastAPI parses the JSON body
            seen.append(len(body["data"]))
            return {"ok": True}

        @app.post("/gradio_api/upload")
        async def upload(request: Request):
            seen.append(len(await request.body()))
            return {"ok": True}
        return app
    return make, seen


def body(n: int) -> bytes:
    return b'{"data": "' + b"x" * (n - 12) + b'"}'


def test_an_oversized_body_is_refused_before_it_is_read(limited_app):
    from starlette.testclient import TestClient
    make, seen = limited_app
    http = TestClient(make(uploads=False), headers={"content-type": "application/json"})
    assert len(body(1000)) == 1000 and http.post("/gradio_api/call/generate", content=body(1000)).json()["ok"]
    r = http.post("/gradio_api/call/generate", content=body(1001))
    assert r.status_code == 413 and "a request body may be at most" in r.json()["detail"] and seen == [988]

    def chunked():                     # no Content-Length: counted as it arrives, refused once past the bound
        data = body(10_000)
        for i in range(0, len(data), 100):
            yield data[i:i + 100]
    r = http.post("/gradio_api/call/generate", content=chunked())
    assert r.status_code == 413 and "at most" in r.json()["detail"] and seen == [988]


def test_uploads_only_where_a_component_takes_them_and_bounded(limited_app):
    from starlette.testclient import TestClient
    make, seen = limited_app
    r = TestClient(make(uploads=False)).post("/gradio_api/upload", files={"files": ("a.png", b"x" * 10)})
    assert r.status_code == 403 and "no file uploads" in r.json()["detail"] and seen == []
    http = TestClient(make(uploads=True))
    assert http.post("/gradio_api/upload", files={"files": ("a.png", b"x" * 4000)}).status_code == 200
    assert http.post("/gradio_api/upload", files={"files": ("a.png", b"x" * 100_000)}).status_code == 413


def test_the_page_takes_uploads_only_in_the_project_tab(tiny_weights, mnist_root, monkeypatch):
    import gradio as gr
    monkeypatch.setenv("GAN_DEMO_DATA", str(mnist_root.parent))
    from gan_demo.app.ui import build_app
    demo = build_app()
    # the picture and the sketch pad of the Project tab; every image shown elsewhere is display-only
    assert sorted(b.elem_id for b in http_limits.upload_components(demo)) == ["project-sketch", "project-upload"]
    options = http_limits.launch_options(demo)
    assert options["max_file_size"] == 10 * 2 ** 20
    with gr.Blocks() as page:                     # a page with an image to upload does take them
        image, out = gr.Image(type="pil"), gr.Textbox()
        image.change(lambda x: "", image, out)
        gr.Image(interactive=False)
    assert http_limits.upload_components(page) == [image]


def test_the_tab_bar_holds_tabs_only(tiny_weights):
    """Everything directly inside gr.Tabs() is a gr.Tab: Gradio 6 places a tab's button by its place among all of
    gr.Tabs' children but lists the bar by its place among the tabs alone, so any other component there (a
    gr.Timer once) makes a later tab's button appear twice when that tab is opened."""
    import gradio as gr
    from gan_demo.app.ui import build_app
    demo = build_app()
    tabs = [b for b in demo.blocks.values() if isinstance(b, gr.Tabs)]
    assert tabs
    for t in tabs:
        assert all(isinstance(c, gr.Tab) for c in t.children), [type(c).__name__ for c in t.children]
