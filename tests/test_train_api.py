"""The Train tab's endpoints, /train (streams) and /train_stop, driven through gradio_client like users' scripts.

The app runs as `python app.py` (see test_app_api.py) with the tiny weights, the offline MNIST copy and a temporary
runs folder; every gradio_client.Client is its own browser session."""
import json
import re
import time

import app_process
import pytest
from PIL import Image

from conftest import SHARED_DATA
from gan_demo import load_generator

gradio_client = pytest.importorskip("gradio_client")
from gradio_client.exceptions import AppError  # noqa: E402

TIMEOUT_S = 120


@pytest.fixture(scope="module")
def app_url(tiny_weights_dir, tmp_path_factory):
    if not (SHARED_DATA / "mnist" / "MNIST" / "raw").is_dir():
        pytest.skip("offline MNIST copy not present")
    folder = tmp_path_factory.mktemp("train_app")
    env = {"GAN_DEMO_DATA": str(SHARED_DATA), "GAN_DEMO_RUNS_DIR": str(folder / "runs"),
           "OMP_NUM_THREADS": "1"}                # one thread per run: faster on a small shared machine
    with app_process.running_app(tiny_weights_dir, folder / "app.log", env=env) as (_, url, _):
        yield url


def client(url):
    return gradio_client.Client(url, verbose=False)


def wait_for(job, text, timeout=TIMEOUT_S):
    """Until one of the job's streamed progress messages contains `text`; → that output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for out in job.outputs():
            if text in out[3]:
                return out
        assert not job.done() or any(text in out[3] for out in job.outputs()), [o[3] for o in job.outputs()]
        time.sleep(0.2)
    raise AssertionError(f"no progress message with {text!r}: {[o[3] for o in job.outputs()]}")


def test_train_endpoints_are_named(app_url):
    api = client(app_url).view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/train", "/train_stop"} <= set(api)
    assert [p["parameter_name"] for p in api["/train"]["parameters"]] == ["model", "steps", "batch", "lr",
                                                                         "start_from"]


def test_train_streams_and_its_generator_is_this_sessions_my_run(app_url):
    c = client(app_url)
    job = c.submit("mnist-gan", 30, 16, 2e-4, "scratch", api_name="/train")
    plot, samples, text, status, download = job.result(timeout=TIMEOUT_S)
    assert len(job.outputs()) >= 2 and "Done" in status and "30 steps of mnist-gan" in status
    traces = json.loads(plot["plot"])["data"]
    assert [t["name"] for t in traces] == ["discriminator loss", "generator loss"] and len(traces[0]["x"]) == 30
    assert Image.open(samples).size == (484, 484) and text == ""
    assert download.endswith(".safetensors") and load_generator(download, device="cpu").entry.name == "mnist-gan"

    name = re.search(r"`(my-run:[0-9a-f]{16})`", status).group(1)
    gallery, _ = c.predict(name, 0, 4, 1.0, api_name="/generate")          # the other tabs take it…
    assert len(gallery) == 4 and Image.open(gallery[0]["image"]).size == (140, 140)
    with pytest.raises(AppError, match="only in the browser session that trained it"):
        client(app_url).predict(name, 0, 4, 1.0, api_name="/generate")   # …in this session only


def test_stop_and_the_queue(app_url):
    a, b = client(app_url), client(app_url)
    job_a = a.submit("mnist-gan", 2000, 16, 2e-4, "scratch", api_name="/train")
    wait_for(job_a, "Training mnist-gan")
    job_b = b.submit("mnist-gan", 10, 16, 2e-4, "scratch", api_name="/train")
    wait_for(job_b, "Queued: you are number 1 in line")                  # the trainer is busy: b waits
    with pytest.raises(AppError, match="already have a run in progress"):
        b.predict("mnist-gan", 10, 16, 2e-4, "scratch", api_name="/train")
    b.predict(api_name="/train_stop")                                    # b leaves the line
    assert "left the queue" in job_b.result(timeout=TIMEOUT_S)[3]
    t0 = time.monotonic()
    assert "Stopping" in a.predict(api_name="/train_stop")
    _, samples, _, status, download = job_a.result(timeout=TIMEOUT_S)
    assert time.monotonic() - t0 < 15
    assert "Stopped" in status and "you pressed Stop" in status and "my-run:" in status
    assert load_generator(download, device="cpu").entry.name == "mnist-gan"


def test_train_refuses_bad_settings(app_url):
    c = client(app_url)
    for args, message in [(("mnist-gan", 5000, 16, 2e-4, "scratch"), "steps must be"),
                          (("mnist-gan", 10, 1000, 2e-4, "scratch"), "batch size must be"),
                          (("mnist-gan", 10, 16, 1.0, "scratch"), "learning rate must be"),
                          (("../../etc/passwd", 10, 16, 2e-4, "scratch"), "cannot train"),
                          (("mnist-gan", 10, 16, 2e-4, "magic"), "start from must be")]:
        with pytest.raises(AppError, match=message):
            c.predict(*args, api_name="/train")
    assert "No run to stop" in c.predict(api_name="/train_stop")
