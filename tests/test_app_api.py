"""Every named endpoint of the running app, called the way users' scripts call it: through gradio_client.

The app runs as `python app.py` in a subprocess on a free loopback port, with the tiny random-init weights."""
from pathlib import Path

import app_process
import pytest
from PIL import Image

from gan_demo.models import build_generator, count_parameters
from gan_demo.registry import REGISTRY

gradio_client = pytest.importorskip("gradio_client")
from gradio_client.exceptions import AppError  # noqa: E402

ENDPOINTS = {"/generate", "/interpolate", "/explore", "/digits", "/text", "/model_card", "/models", "/project",
             "/project_stop"}


@pytest.fixture(scope="module")
def app_url(tiny_weights_dir, tmp_path_factory):
    with app_process.running_app(tiny_weights_dir, tmp_path_factory.mktemp("app") / "app.log") as (_, url, _):
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    return gradio_client.Client(app_url, verbose=False)


def bad(client, *args, api_name, match):
    """The call fails with a gr.Error whose message matches."""
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name=api_name)


def test_every_action_has_a_named_endpoint(client):
    assert ENDPOINTS <= set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])


def test_generate_returns_labelled_images_and_a_grid(client):
    gallery, grid = client.predict("celeba64-dcgan", 100, 16, 1.0, api_name="/generate")
    assert [item["caption"] for item in gallery] == [f"seed {s}" for s in range(100, 116)]
    assert all(Image.open(item["image"]).size == (64, 64) for item in gallery)
    assert Image.open(grid).size == (266, 266) and Image.open(grid).format == "PNG"
    # downloads are saved under names that say what they hold, not a hash
    assert Path(grid).name == "celeba64-dcgan-seeds-100-115.png" and Path(gallery[0]["image"]).name == \
        "celeba64-dcgan-seed-100.png"


def test_generate_is_deterministic_for_a_seed(client):
    a, _ = client.predict("celeba64-dcgan", 42, 2, 0.7, api_name="/generate")
    b, _ = client.predict("celeba64-dcgan", 42, 2, 0.7, api_name="/generate")
    assert [Image.open(x["image"]).tobytes() for x in a] == [Image.open(x["image"]).tobytes() for x in b]


def test_small_images_come_enlarged(client):
    gallery, _ = client.predict("mnist-gan", 0, 3, 1.0, api_name="/generate")
    assert [Image.open(item["image"]).size for item in gallery] == [(140, 140)] * 3


@pytest.mark.parametrize("seed, message", [(-1, "seed must be from 0"), (2 ** 32, "seed must be from 0"),
                                           ("NaN", "seed must be a whole number"), (1.5, "seed must be a whole"),
                                           (None, "seed must be a whole number")])
def test_generate_refuses_bad_seeds(client, seed, message):
    bad(client, "celeba64-dcgan", seed, 4, 1.0, api_name="/generate", match=message)


@pytest.mark.parametrize("count", [0, 65, 10 ** 6, "16"])
def test_generate_refuses_bad_grid_sizes(client, count):
    bad(client, "celeba64-dcgan", 0, count, 1.0, api_name="/generate", match="grid size")


@pytest.mark.parametrize("model", ["nope", "../../etc/passwd", "/etc/passwd", "text-wgangp"])
def test_generate_refuses_models_outside_the_registry(client, model):
    bad(client, model, 0, 4, 1.0, api_name="/generate", match="unknown model|cannot be used here")


def test_interpolate_returns_a_strip_and_a_looping_gif(client):
    strip, gif, mp4 = client.predict("celeba64-dcgan", 1, 2, 8, "slerp", 1.0, api_name="/interpolate")
    assert open(mp4, "rb").read(12)[4:8] == b"ftyp"
    assert [Path(f).name for f in (strip, gif, mp4)] == [
        "celeba64-dcgan-walk-1-2-frames.png", "celeba64-dcgan-walk-1-2.gif", "celeba64-dcgan-walk-1-2.mp4"]
    assert Image.open(strip).size == (8 * 66 + 2, 68)
    animation = Image.open(gif)
    assert animation.format == "GIF" and animation.n_frames == 14 and animation.size == (64, 64)


@pytest.mark.parametrize("args, message", [((0, 1, 61, "slerp"), "steps"), ((0, 1, 1, "lerp"), "steps"),
                                           ((0, 1, 4, "cubic"), "mode"), ((-1, 1, 4, "lerp"), "seed A")])
def test_interpolate_refuses_bad_input(client, args, message):
    bad(client, "celeba64-dcgan", *args, 1.0, api_name="/interpolate", match=message)


def test_explore_moves_the_picture(client):
    still = client.predict("celeba64-dcgan", 3, 1.0, *[0] * 8, api_name="/explore")
    moved = client.predict("celeba64-dcgan", 3, 1.0, 4, 0, 0, 0, 0, 0, 0, -4, api_name="/explore")
    again = client.predict("celeba64-dcgan", 3, 1.0, 4, 0, 0, 0, 0, 0, 0, -4, api_name="/explore")
    assert Image.open(still).size == (64, 64)
    assert Image.open(moved).tobytes() == Image.open(again).tobytes() != Image.open(still).tobytes()


def test_explore_refuses_bad_input(client):
    bad(client, "celeba64-dcgan", 3, 1.0, 99, 0, 0, 0, 0, 0, 0, 0, api_name="/explore", match="slider 1")
    bad(client, "celeba64-dcgan", 2 ** 32, 1.0, *[0] * 8, api_name="/explore", match="seed")
    bad(client, "../../etc/passwd", 3, 1.0, *[0] * 8, api_name="/explore", match="unknown model")


def test_digits_grid_and_caption(client):
    grid, caption = client.predict("mnist-cdcgan", [3, 1], 5, 4, False, api_name="/digits")
    assert Image.open(grid).size == (4 * 142 + 2, 2 * 142 + 2)
    assert caption == "Rows, top to bottom: digits 1, 3. Columns: seeds 5 … 8."
    grid, _ = client.predict("mnist-cgan", [], 0, 2, True, api_name="/digits")
    assert Image.open(grid).size == (2 * 142 + 2, 10 * 142 + 2)


def test_digits_refuses_bad_input(client):
    bad(client, "mnist-cdcgan", [12], 0, 4, False, api_name="/digits", match="digit")
    bad(client, "mnist-cdcgan", [1], 0, 11, False, api_name="/digits", match="seeds per digit")
    bad(client, "mnist-dcgan", [1], 0, 4, False, api_name="/digits", match="cannot be used here")


def test_text_sentences_and_copies(client):
    table, summary = client.predict("text-wgangp", 7, 5, "argmax", 1.0, api_name="/text")
    again, _ = client.predict("text-wgangp", 7, 5, "argmax", 1.0, api_name="/text")
    assert table["headers"] == ["seed", "sentence", "copied from training data"]
    assert [row[0] for row in table["data"]] == [7, 8, 9, 10, 11] and table["data"] == again["data"]
    flags = [row[2] for row in table["data"]]
    if "not on this machine" in summary:                   # no corpus: every flag unknown, none claimed
        assert flags == ["unknown"] * 5
    else:                                                  # the count agrees with the rows' flags
        assert set(flags) <= {"yes", "no"} and summary.startswith(f"**{flags.count('yes')} of 5**"), summary
    hot, _ = client.predict("text-wgangp", 7, 5, "temperature", 1.5, api_name="/text")
    assert len(hot["data"]) == 5


@pytest.mark.parametrize("args, message", [((0, 0, "argmax", 1.0), "number of sentences"),
                                           ((0, 51, "argmax", 1.0), "number of sentences"),
                                           ((0, 5, "temperature", 99), "temperature"),
                                           ((0, 5, "beam", 1.0), "sampling")])
def test_text_refuses_bad_input(client, args, message):
    bad(client, "text-wgangp", *args, api_name="/text", match=message)


def test_model_card_and_model_list(client):
    markdown, chart, losses, progress = client.predict("mnist-cdcgan", api_name="/model_card")
    assert "mnist-cdcgan" in markdown and "Generator parameters" in markdown and chart is None and losses is None
    table = client.predict(api_name="/models")
    assert [row[0] for row in table["data"]][:2] == ["mnist-gan", "mnist-dcgan"] and len(table["data"]) == 14
    assert table["headers"] == ["model", "data", "family", "quality", "trained", "status"]
    assert {row[5] for row in table["data"]} == {"ready"} and {row[4] for row in table["data"]} == {"0 steps"}
    bad(client, "../../etc/passwd", api_name="/model_card", match="unknown model")


def test_a_missing_checkpoint_is_a_message_not_a_crash(tmp_path_factory):
    empty = tmp_path_factory.mktemp("no_weights")
    with app_process.running_app(empty, empty / "app.log") as (_, url, _):
        c = gradio_client.Client(url, verbose=False)
        bad(c, "celeba64-dcgan", 0, 4, 1.0, api_name="/generate",
            match="celeba64-dcgan is not available: celeba64-dcgan.safetensors not found")
        table = c.predict(api_name="/models")
        assert all(row[5].startswith("not available") and row[3] == row[4] == "" for row in table["data"])
        markdown, _, _, _ = c.predict("celeba64-dcgan", api_name="/model_card")
        e = REGISTRY["celeba64-dcgan"]
        assert "not available" in markdown and f"{count_parameters(build_generator(e.arch, e.config)):,}" in markdown


def test_project_finds_a_drawing_and_refuses_a_non_picture(client, tmp_path):
    from PIL import ImageDraw
    img = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(img).line([(40, 40), (150, 40), (80, 170)], fill="black", width=14)
    img.save(tmp_path / "seven.png")
    status, target, found, summary, files = client.predict(
        "mnist-cdcgan", "upload", gradio_client.handle_file(str(tmp_path / "seven.png")), None, api_name="/project")
    assert "Done" in status and "Mean pixel error" in summary and "Best-fitting class" in summary
    assert Image.open(target).size == Image.open(found).size
    assert sorted(Path(f).suffix for f in files) == [".json", ".npy"]
    (tmp_path / "notes.png").write_text("not a picture")
    bad(client, "mnist-cdcgan", "upload", gradio_client.handle_file(str(tmp_path / "notes.png")), None,
        api_name="/project", match="not a picture")
    bad(client, "mnist-cdcgan", "upload", None, None, api_name="/project", match="upload a picture first")
