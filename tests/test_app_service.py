"""The app's logic (gan_demo.app.service), called directly: shapes, determinism, limits and availability."""
import io
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app_process import make_tiny_weights
from conftest import ROOT
from gan_demo.app import service
from gan_demo.latents import MAX_SEED
from gan_demo.models import build_generator, count_parameters
from gan_demo.registry import REGISTRY

BAD_SEEDS = [-1, 2 ** 32, float("nan"), float("inf"), 1.5, "3", None, True]


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img)


def generator_size(name: str) -> int:
    e = REGISTRY[name]
    return count_parameters(build_generator(e.arch, e.config))


def close(a, b) -> bool:
    """Equal up to one grey level: the same seed in batches of different sizes may round differently."""
    return np.abs(np.asarray(a).astype(int) - np.asarray(b)).max() <= 1


@pytest.fixture
def store(tiny_weights):
    """A fresh cache per test, so one test's loads never leak into another's weights folder."""
    return service.ModelStore(device="cpu")


# --- menus and input checks ------------------------------------------------------------------------------------
def test_menus_put_faces_first_and_split_by_kind():
    images = service.image_models()
    assert images[0] == "celeba64-dcgan" and images[:3] == ["celeba64-dcgan", "celeba128-dcgan", "celeba128-wgangp"]
    assert set(images) == {n for n, e in REGISTRY.items() if not e.is_text}
    assert service.conditional_models() == ["mnist-cdcgan", "mnist-cgan"]
    assert service.text_models() == ["text-wgangp"]


@pytest.mark.parametrize("name", ["nope", "../../etc/passwd", "/etc/passwd", "weights/mnist-gan.safetensors", "",
                                  None, 3, ["mnist-gan"]])
def test_only_registry_names_pass(name):
    with pytest.raises(ValueError, match="unknown model"):
        service.check_model(name, "image")


def test_a_model_of_the_wrong_kind_is_refused_by_name():
    with pytest.raises(ValueError, match="text-wgangp cannot be used here"):
        service.check_model("text-wgangp", "image")
    with pytest.raises(ValueError, match="mnist-gan cannot be used here"):
        service.check_model("mnist-gan", "conditional")


@pytest.mark.parametrize("bad", BAD_SEEDS)
def test_bad_seeds_are_refused(bad):
    with pytest.raises(ValueError, match="seed must be"):
        service.seed(bad)


def test_seeds_accept_whole_floats_and_wrap_in_runs():
    assert service.seed(3.0) == 3 and service.seed(MAX_SEED) == MAX_SEED
    assert service.seed_run(MAX_SEED - 1, 3) == [MAX_SEED - 1, MAX_SEED, 0]


def test_error_messages_quote_huge_values_briefly():
    with pytest.raises(ValueError) as e:
        service.seed("x" * 10_000)
    assert len(str(e.value)) < 120


# --- Faces -----------------------------------------------------------------------------------------------------
def test_generate_sizes_counts_and_seeds(store):
    b = service.generate("celeba64-dcgan", 5, 16, 1.0, store=store)
    assert len(b.images) == 16 and b.seeds == list(range(5, 21))
    assert all(im.size == (64, 64) and im.mode == "RGB" for im in b.images)
    assert b.grid.size == (4 * 66 + 2, 4 * 66 + 2)


def test_tiny_images_are_enlarged_with_sharp_pixels(store):
    img = service.generate("mnist-gan", 0, 1, store=store).images[0]
    assert img.size == (140, 140) and img.mode == "L"            # 28 px × 5, nearest neighbour
    a = pixels(img)
    assert (a.reshape(28, 5, 28, 5) == a[::5, ::5][:, None, :, None]).all()
    assert service.generate("cifar10-dcgan", 0, 1, store=store).images[0].size == (128, 128)
    assert service.generate("celeba128-dcgan", 0, 1, store=store).images[0].size == (128, 128)


def test_generate_is_deterministic_per_seed(store):
    a = service.generate("celeba64-dcgan", 7, 3, store=store)
    b = service.generate("celeba64-dcgan", 8, 2, store=store)
    assert close(a.images[1], b.images[0])                        # seed 8 in both
    assert (pixels(a.images[0]) == pixels(service.generate("celeba64-dcgan", 7, 3, store=store).images[0])).all()
    assert not (pixels(a.images[0]) == pixels(a.images[1])).all()


def test_truncation_changes_the_picture(store):
    a = service.generate("celeba64-dcgan", 1, 1, 1.0, store=store).images[0]
    b = service.generate("celeba64-dcgan", 1, 1, 0.3, store=store).images[0]
    assert not (pixels(a) == pixels(b)).all()


@pytest.mark.parametrize("count", [0, -1, 65, 10 ** 6, 2.5, float("nan"), "16", None])
def test_grid_size_is_limited(store, count):
    with pytest.raises(ValueError, match="grid size"):
        service.generate("celeba64-dcgan", 0, count, store=store)


@pytest.mark.parametrize("psi", [0, 0.05, 1.5, float("nan"), "1"])
def test_truncation_is_limited(store, psi):
    with pytest.raises(ValueError, match="truncation"):
        service.generate("celeba64-dcgan", 0, 1, psi, store=store)


def test_conditional_models_draw_seed_mod_10(store):
    g = store.get("mnist-cdcgan")
    expected = service.enlarge(g.sample(seeds=[13], labels=[3]))[0]
    got = pixels(service.generate("mnist-cdcgan", 13, 1, store=store).images[0])
    assert (got == expected[..., 0]).all()


# --- Interpolate -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["slerp", "lerp"])
def test_interpolation_runs_from_a_to_b(store, mode):
    w = service.interpolate("celeba64-dcgan", 3, 9, 6, mode, store=store)
    assert len(w.frames) == 6
    ends = service.generate("celeba64-dcgan", 3, 1, store=store).images[0], \
        service.generate("celeba64-dcgan", 9, 1, store=store).images[0]
    assert close(w.frames[0], ends[0]) and close(w.frames[-1], ends[1])
    gif = Image.open(io.BytesIO(w.gif))
    assert gif.format == "GIF" and gif.n_frames == 2 * 6 - 2              # there and back
    assert w.strip.size == (6 * 66 + 2, 66 + 2)


def test_interpolation_limits(store):
    for steps in (1, 61, 10 ** 6, float("nan")):
        with pytest.raises(ValueError, match="steps"):
            service.interpolate("celeba64-dcgan", 0, 1, steps, store=store)
    with pytest.raises(ValueError, match="mode"):
        service.interpolate("celeba64-dcgan", 0, 1, 4, "cubic", store=store)
    with pytest.raises(ValueError, match="seed B"):
        service.interpolate("celeba64-dcgan", 0, -1, 4, store=store)


def test_a_long_interpolation_wraps_its_strip(store):
    w = service.interpolate("mnist-gan", 0, 1, 60, "lerp", store=store)
    assert w.strip.size == (12 * 142 + 2, 5 * 142 + 2)


# --- Explore ---------------------------------------------------------------------------------------------------
def test_explore_at_zero_is_the_seed_picture(store):
    img = service.explore("celeba64-dcgan", 4, [0] * 8, store=store)
    assert (pixels(img) == pixels(service.generate("celeba64-dcgan", 4, 1, store=store).images[0])).all()


def test_explore_moves_along_directions_deterministically(store):
    a = service.explore("celeba64-dcgan", 4, [3, 0, 0, 0, 0, 0, 0, -2], store=store)
    b = service.explore("celeba64-dcgan", 4, [3, 0, 0, 0, 0, 0, 0, -2], store=store)
    c = service.explore("celeba64-dcgan", 4, [0] * 8, store=store)
    assert (pixels(a) == pixels(b)).all() and not (pixels(a) == pixels(c)).all()
    assert len(service.direction_labels("celeba64-dcgan", store=store)) == 8


def test_explore_limits(store):
    with pytest.raises(ValueError, match="slider 2"):
        service.explore("celeba64-dcgan", 0, [0, 5.5], store=store)
    with pytest.raises(ValueError, match="at most 8"):
        service.explore("celeba64-dcgan", 0, [0] * 9, store=store)
    with pytest.raises(ValueError, match="slider 1"):
        service.explore("celeba64-dcgan", 0, [float("nan")], store=store)


def test_slider_previews_show_each_direction_at_both_ends(store):
    previews = service.slider_previews("celeba64-dcgan", 4, 0.8, store=store)
    assert len(previews) == 8 and {p.size for p in previews} == {(2 * 66 + 2, 68)}   # two 64-px pictures, padded
    third = pixels(previews[2])
    left, right = third[2:66, 2:66], third[2:66, 68:132]
    amounts = [0, 0, -service.PREVIEW_AMOUNT] + [0] * 5
    assert (left == pixels(service.explore("celeba64-dcgan", 4, amounts, 0.8, store=store))).all()
    amounts[2] = service.PREVIEW_AMOUNT
    assert (right == pixels(service.explore("celeba64-dcgan", 4, amounts, 0.8, store=store))).all()
    assert not (left == right).all()
    again = service.slider_previews("celeba64-dcgan", 4, 0.8, store=store)
    assert all((pixels(a) == pixels(b)).all() for a, b in zip(previews, again))
    assert previews[0].size != service.slider_previews("mnist-gan", 4, store=store)[0].size   # digits enlarged


def test_slider_previews_refuse_bad_input(store):
    with pytest.raises(ValueError, match="seed"):
        service.slider_previews("celeba64-dcgan", 2 ** 32, store=store)
    with pytest.raises(ValueError, match="truncation"):
        service.slider_previews("celeba64-dcgan", 0, float("nan"), store=store)
    with pytest.raises(ValueError, match="text model|image model|unknown"):
        service.slider_previews("text-wgangp", 0, store=store)


def test_directions_missing_from_a_checkpoint_are_computed_once(tmp_path, monkeypatch):
    make_tiny_weights(tmp_path, ["mnist-gan"], directions=False)
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))
    store = service.ModelStore(device="cpu")
    assert store.get("mnist-gan").directions is None
    vectors, labels = store.directions("mnist-gan")
    assert vectors.shape == (8, 100) and len(labels) == 8
    assert torch.allclose(vectors.norm(dim=1), torch.ones(8), atol=1e-4)
    assert store.directions("mnist-gan")[0] is vectors                      # cached
    assert service.explore("mnist-gan", 0, [2.0], store=store).size == (140, 140)


# --- Digits ----------------------------------------------------------------------------------------------------
def test_digits_grid_rows_are_digits_and_columns_seeds(store):
    d = service.digits("mnist-cdcgan", [7, 3], 10, 4, store=store)
    assert d.digits == [3, 7] and d.seeds == [10, 11, 12, 13]
    assert d.image.size == (4 * 142 + 2, 2 * 142 + 2)
    g = store.get("mnist-cdcgan")
    seven_at_11 = service.enlarge(g.sample(seeds=[11], labels=[7]))[0][..., 0]
    cell = pixels(d.image)[2 + 142: 2 + 142 + 140, 2 + 142: 2 + 142 + 140]    # row 1 (digit 7), column 1 (seed 11)
    assert close(cell, seven_at_11)


def test_all_ten_digits(store):
    d = service.digits("mnist-cgan", [], 0, 10, all_digits=True, store=store)
    assert d.digits == list(range(10)) and d.image.size == (10 * 142 + 2, 10 * 142 + 2)


def test_digit_strings_from_api_clients_are_accepted(store):
    assert service.digits("mnist-cdcgan", ["1", "2"], 0, 1, store=store).digits == [1, 2]


@pytest.mark.parametrize("chosen, message", [([], "at least one digit"), ([10], "digit"), ([-1], "digit"),
                                             (["x"], "digit"), (list(range(11)), "at most 10"), ("7", "a list")])
def test_bad_digits(store, chosen, message):
    with pytest.raises(ValueError, match=message):
        service.digits("mnist-cdcgan", chosen, 0, 2, store=store)


def test_digits_limits(store):
    with pytest.raises(ValueError, match="seeds per digit"):
        service.digits("mnist-cdcgan", [1], 0, 11, store=store)
    with pytest.raises(ValueError, match="cannot be used here"):
        service.digits("mnist-dcgan", [1], 0, 2, store=store)
    with pytest.raises(ValueError, match="true or false"):
        service.digits("mnist-cdcgan", [1], 0, 2, all_digits="yes", store=store)


# --- Text ------------------------------------------------------------------------------------------------------
def test_text_counts_and_determinism(store, monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_DEMO_DATA", str(tmp_path))                      # no corpus there
    a = service.text("text-wgangp", 0, 5, store=store)
    b = service.text("text-wgangp", 0, 5, store=store)
    assert [r[:2] for r in a.rows] == [r[:2] for r in b.rows] and len(a.rows) == 5
    assert [r[0] for r in a.rows] == [0, 1, 2, 3, 4] and all(r[2] is None for r in a.rows)
    assert "not on this machine" in a.summary
    hot = service.text("text-wgangp", 0, 5, temperature=1.0, store=store)
    assert [r[1] for r in hot.rows] == [r[1] for r in service.text("text-wgangp", 0, 5, 1.0, store=store).rows]


def test_text_counts_verbatim_copies_of_the_corpus(store, monkeypatch, tmp_path):
    lines = [r[1] for r in service.text("text-wgangp", 0, 6, store=store).rows]
    copied = next(line for line in lines if service.canonical(line))
    corpus = tmp_path / "text" / "lines.txt"
    corpus.parent.mkdir(parents=True)
    # one generated sentence, written differently (upper case, trailing spaces), is in the corpus
    corpus.write_text(f"{copied.upper()}  \nan unrelated sentence.\n")
    monkeypatch.setenv("GAN_DEMO_DATA", str(tmp_path))
    result = service.text("text-wgangp", 0, 6, store=store)
    expected = [service.canonical(line) == service.canonical(copied) for line in lines]
    assert [r[2] for r in result.rows] == expected
    assert f"**{sum(expected)} of 6**" in result.summary


@pytest.mark.parametrize("count", [0, 51, 10 ** 6])
def test_text_limits(store, count):
    with pytest.raises(ValueError, match="number of sentences"):
        service.text("text-wgangp", 0, count, store=store)


@pytest.mark.parametrize("temperature", [0.01, 10, float("nan"), "hot"])
def test_temperature_limits(store, temperature):
    with pytest.raises(ValueError, match="temperature"):
        service.text("text-wgangp", 0, 2, temperature, store=store)


# --- availability ----------------------------------------------------------------------------------------------
def test_missing_and_broken_checkpoints_are_reported_not_raised(tmp_path, monkeypatch):
    make_tiny_weights(tmp_path, ["mnist-gan"])
    (tmp_path / "mnist-dcgan.safetensors").write_bytes(b"\x00" * 100)        # garbage
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))
    store = service.ModelStore(device="cpu")
    statuses = service.model_statuses(store, load=True)
    assert statuses["mnist-gan"] == "ready"
    assert statuses["celeba64-dcgan"].startswith("not available: celeba64-dcgan.safetensors not found")
    assert statuses["mnist-dcgan"].startswith("not available: mnist-dcgan.safetensors")
    assert str(tmp_path) not in statuses["mnist-dcgan"]                      # no server paths in messages
    with pytest.raises(ValueError, match="mnist-dcgan is not available"):
        service.generate("mnist-dcgan", 0, 1, store=store)
    assert service.default_model("image", store) == "mnist-gan"               # the only one that loads
    info = service.model_info("celeba128-wgangp", store=store)
    assert "not available" in info.markdown
    assert f"{generator_size('celeba128-wgangp'):,}" in info.markdown          # from the architecture alone


def test_the_overview_gives_each_model_its_quality_and_training(tmp_path, monkeypatch):
    from training.export import update_metrics
    make_tiny_weights(tmp_path, ["mnist-gan", "mnist-cgan", "celeba64-dcgan"], directions=False)
    (tmp_path / "mnist-dcgan.safetensors").write_bytes(b"\x00" * 100)        # garbage
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))
    update_metrics("mnist-gan", {"classifier_fid": 32.08, "confidently_classified": 0.8441})
    update_metrics("mnist-cgan", {"conditional_accuracy": 0.9861})
    update_metrics("celeba64-dcgan", {"fid": 30.94, "fid_samples": 10000, "kid": 0.02})
    rows = {r[0]: r[1:] for r in service.model_overview(service.ModelStore(device="cpu"))}
    assert set(rows) == set(REGISTRY)
    assert rows["mnist-gan"] == ("ready", "classifier-FID 32.1, 84.4% well-formed", "0 steps")
    assert rows["mnist-cgan"][1] == "98.6% the digit asked for"
    assert rows["celeba64-dcgan"][1] == "FID 30.9 (10,000 samples)"
    assert rows["mnist-dcgan"][0].startswith("not available") and rows["mnist-dcgan"][1:] == ("", "")
    assert rows["text-wgangp"] == ("not available: text-wgangp.safetensors not found in the weights folder", "", "")


def test_the_line_under_a_menu_gives_the_chosen_models_quality_training_and_licence(tmp_path, monkeypatch):
    from training.export import update_metrics
    make_tiny_weights(tmp_path, ["mnist-gan", "celeba64-dcgan"], directions=False)
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))
    update_metrics("celeba64-dcgan", {"fid": 30.94, "fid_samples": 10000})
    store = service.ModelStore(device="cpu")
    assert service.model_line("celeba64-dcgan", store) == \
        "FID 30.9 (10,000 samples) · trained 0 steps · non-commercial research use only (CelebA)"
    assert service.model_line("mnist-gan", store) == "quality not measured · trained 0 steps"   # no licence note
    assert service.model_line("cifar10-dcgan", store) == \
        "cifar10-dcgan: not available: cifar10-dcgan.safetensors not found in the weights folder"
    for bad in ("no-such-model", None, "my-run:0123456789abcdef", 7):     # a menu value never raises
        assert service.model_line(bad, store) == ""


def test_training_summary_says_how_long_and_on_what():
    from gan_demo.model_card import quality_summary, training_summary
    assert training_summary({"steps": 43000, "hardware": "CPU (AMD EPYC, 1 threads)", "wall_time_s": 19080}) \
        == "43,000 steps, CPU (AMD EPYC, 1 thread), 5.3 h"
    assert training_summary({"steps": 3868, "hardware": "NVIDIA H100 80GB HBM3", "wall_time_s": 260}) \
        == "3,868 steps, NVIDIA H100 80GB HBM3, 4 min"
    assert training_summary({}) == "" and quality_summary({}) == ""
    assert quality_summary({"js_4gram": 0.3081, "word_validity": 0.394}) == "4-gram divergence 0.308, 39.4% valid words"


def test_no_weights_at_all_still_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))
    store = service.ModelStore(device="cpu")
    assert service.default_model("image", store) == "celeba64-dcgan"
    assert all(s.startswith("not available") for s in service.model_statuses(store, load=True).values())


def test_a_checkpoint_that_lands_later_is_picked_up(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))
    store = service.ModelStore(device="cpu")
    with pytest.raises(ValueError, match="not available"):
        store.get("mnist-gan")
    make_tiny_weights(tmp_path, ["mnist-gan"], directions=False)
    assert store.get("mnist-gan").name == "mnist-gan" and store.status("mnist-gan") == "ready"


def test_a_file_holding_another_model_is_refused(tmp_path, monkeypatch):
    make_tiny_weights(tmp_path, ["mnist-gan"], directions=False)
    (tmp_path / "mnist-gan.safetensors").rename(tmp_path / "mnist-cgan.safetensors")
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))
    status = service.model_statuses(service.ModelStore(device="cpu"), load=True)["mnist-cgan"]
    assert status == "not available: mnist-cgan.safetensors: the file holds model 'mnist-gan', not 'mnist-cgan'"


def test_concurrent_first_requests_load_a_model_once(store, monkeypatch):
    loads = []
    real = service.generator_from_checkpoint
    monkeypatch.setattr(service, "generator_from_checkpoint", lambda *a, **k: loads.append(1) or real(*a, **k))
    got = []
    threads = [threading.Thread(target=lambda: got.append(store.get("celeba64-dcgan"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len(got) == 8 and all(g is got[0] for g in got)


def test_model_info_shows_the_card_and_pictures(tiny_weights, store):
    info = service.model_info("mnist-gan", store=store)
    assert info.status == "ready" and "Generator parameters" in info.markdown
    assert info.losses is None and info.progress is None
    (tiny_weights / "mnist-gan.md").write_text("# mnist-gan\n\nan old card with raw keys\n")
    (tiny_weights / "mnist-gan-losses.png").write_bytes(b"png")
    frames = [Image.new("L", (8, 8), v) for v in (0, 100, 200)]          # noise … what the model learned
    frames[0].save(tiny_weights / "mnist-gan-progress.gif", save_all=True, append_images=frames[1:], duration=250)
    try:
        info = service.model_info("mnist-gan", store=store)
        assert "old card" not in info.markdown and "## Training" in info.markdown     # from the checkpoint
        assert info.losses.name == "mnist-gan-losses.png" and info.progress.name == "mnist-gan-progress.gif"
        gif = Image.open(io.BytesIO(service.training_animation(info.progress)))
        firsts = []
        for i in range(gif.n_frames):
            gif.seek(i)
            firsts.append((np.asarray(gif.convert("L"))[0, 0], gif.info["duration"]))
        assert firsts == [(200, 2000), (0, 250), (100, 250), (200, 250)]      # opens on the last frame
    finally:
        for f in ("mnist-gan.md", "mnist-gan-losses.png", "mnist-gan-progress.gif"):
            (tiny_weights / f).unlink()


def test_models_tab_charts_the_shipped_loss_history_else_shows_the_picture(tiny_weights):
    import plotly.graph_objects as go
    from gan_demo.app.ui import models
    from gan_demo.loss_history import write_loss_history
    png, history = tiny_weights / "mnist-gan-losses.png", tiny_weights / "mnist-gan-losses.json"
    Image.new("RGB", (72, 40), "white").save(png)
    try:
        _, chart, losses, _ = models.card("mnist-gan")                  # an older export: the picture only
        assert chart is None and Path(losses).read_bytes() == png.read_bytes()
        write_loss_history(history, [{"step": s, "d_loss": 0.5, "g_loss": 1.0 + s / 1000} for s in (50, 100, 150)])
        _, chart, losses, _ = models.card("mnist-gan")
        assert isinstance(chart, go.Figure) and losses is None
        assert [t.name for t in chart.data] == ["discriminator loss", "generator loss"]
        assert list(chart.data[1].x) == [50, 100, 150] and list(chart.data[1].y) == [1.05, 1.1, 1.15]
        assert chart.layout.hovermode == "x unified" and chart.layout.xaxis.title.text == "step"
        assert list(chart.layout.xaxis.range) == [0, 150]
        history.write_text("{broken")                                    # a broken file: the picture again
        _, chart, losses, _ = models.card("mnist-gan")
        assert chart is None and losses is not None
    finally:
        png.unlink()
        history.unlink(missing_ok=True)


def test_the_chart_marks_the_shipped_step_when_training_went_on_past_it():
    from gan_demo.app.ui.models import loss_chart
    from gan_demo.loss_history import LossHistory
    history = LossHistory([100, 200, 300], {"d_loss": [0.5, 0.6, 0.7], "g_loss": [1.0, 1.1, 1.2]})
    marked = loss_chart(history, shipped_step=200)
    assert [(s.x0, s.x1) for s in marked.layout.shapes] == [(200, 200)]
    assert "shipped: step 200" in [a.text for a in marked.layout.annotations]
    assert not loss_chart(history, shipped_step=300).layout.shapes          # the last step: nothing to mark
    assert not loss_chart(history).layout.shapes


def test_inference_side_imports_neither_training_nor_gradio_in_the_service():
    code = ("import sys; import gan_demo.app.service; assert 'gradio' not in sys.modules, 'gradio'; "
            "import gan_demo.app.ui; bad = [m for m in sys.modules if m == 'training' or m.startswith('training.')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


# --- Project: a found latent in Explore and Interpolate --------------------------------------------------------
def drawn_seven() -> Image.Image:
    from PIL import ImageDraw
    img = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(img).line([(40, 40), (150, 40), (80, 170)], fill="black", width=14)
    return img


def test_a_projected_latent_opens_in_explore_and_interpolate(store):
    p = service.project("mnist-cdcgan", drawn_seven(), store=store)
    latent = service.latent_of(p, "mnist-cdcgan")
    assert latent["label"] == p.label and len(latent["z"]) == 100
    found = service.enlarge(p.reconstruction[None])[0][..., 0]
    assert close(service.explore("mnist-cdcgan", 0, [], store=store, latent=latent), found)
    w = service.interpolate("mnist-cdcgan", 5, None, 4, "lerp", store=store, latent_b=latent)
    assert close(w.frames[-1], found)                # B is the picture, in its own class
    assert w.mp4[4:8] == b"ftyp"
    w = service.interpolate("mnist-cdcgan", None, 5, 4, "lerp", store=store, latent_a=latent)
    assert close(w.frames[0], found)


@pytest.mark.parametrize("latent, message", [
    ({"model": "mnist-dcgan", "z": [0.0] * 100, "label": 1}, "not mnist-cdcgan"),
    ({"model": "mnist-cdcgan", "z": [0.0] * 99, "label": 1}, "100 finite numbers"),
    ({"model": "mnist-cdcgan", "z": [float("nan")] * 100, "label": 1}, "finite"),
    ({"model": "mnist-cdcgan", "z": ["x"] * 100, "label": 1}, "numbers only"),
    ({"model": "mnist-cdcgan", "z": [0.0] * 100, "label": 10}, "class"),
    ("not a dict", "a latent must be"),
])
def test_bad_latents_are_refused(store, latent, message):
    with pytest.raises(ValueError, match=message):
        service.explore("mnist-cdcgan", 0, [], store=store, latent=latent)


def test_project_needs_a_picture_and_an_image_model(store):
    with pytest.raises(ValueError, match="upload a picture"):
        service.project("mnist-cdcgan", None, store=store)
    with pytest.raises(ValueError, match="cannot be used here"):
        service.project("text-wgangp", drawn_seven(), store=store)
    with pytest.raises(ValueError, match="not a picture"):
        service.project("mnist-cdcgan", b"GIF89a but not really", store=store)


def test_explore_leaves_the_picture_while_its_seed_or_truncation_box_is_emptied():
    """The picture follows every change of the boxes: one cleared to type a new value is no error toast."""
    import gradio as gr
    from gan_demo.app.ui import explore as tab
    for seed, truncation in ((None, 1.0), (3, None)):
        assert tab.explore(None, "mnist-dcgan", seed, truncation, None, *[0] * 8) == gr.skip()
        assert tab.slider_previews(None, "mnist-dcgan", seed, truncation, None) == [gr.skip()] * 8


def test_the_digits_caption_says_when_its_seeds_wrapped_past_the_largest():
    from gan_demo.app.service import MAX_SEED, seed_run
    from gan_demo.app.ui.digits import seed_span
    assert seed_span(seed_run(5, 5)) == "seeds 5 … 9" and seed_span([7]) == "seed 7"
    assert seed_span(seed_run(MAX_SEED, 10)) == f"seeds {MAX_SEED}, then 0 … 8"
    assert seed_span(seed_run(MAX_SEED - 2, 4)) == f"seeds {MAX_SEED - 2} … {MAX_SEED}, then 0"
