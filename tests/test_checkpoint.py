"""Checkpoint round trips are bit-exact; every broken file gives a one-line error naming the file."""
import pickle

import pytest
import torch

from gan_demo import CheckpointError, load_generator, read_checkpoint, save_checkpoint
from gan_demo.models import build_generator
from gan_demo.registry import REGISTRY


def _save(path, name="mnist-dcgan", half=False, **kw):
    e = REGISTRY[name]
    torch.manual_seed(1)
    g = build_generator(e.arch, e.config)
    save_checkpoint(path, e, g.state_dict(), half=half, **kw)
    return e, g.state_dict()


@pytest.mark.parametrize("half", [False, True])
def test_round_trip_is_bit_exact(tmp_path, half):
    p = tmp_path / "m.safetensors"
    dirs = {"vectors": torch.randn(3, 100), "labels": ["a", "b", "c"], "layer": "net.2"}
    e, state = _save(p, half=half, training={"steps": 5}, metrics={"fid": 1.5}, directions=dirs)
    entry, loaded, meta = read_checkpoint(p)
    assert entry == e
    for k, v in state.items():
        want = v.half().float() if half and v.is_floating_point() else v
        assert torch.equal(loaded[k], want), k
    assert meta["training"] == {"steps": 5} and meta["metrics"] == {"fid": 1.5}
    assert torch.equal(meta["directions"]["vectors"], dirs["vectors"]) and meta["directions"]["labels"] == ["a", "b", "c"]
    assert meta["license"] == e.license


def test_file_alone_rebuilds_the_model(tmp_path):
    p = tmp_path / "anything.safetensors"
    _save(p, "mnist-cdcgan")
    g = load_generator(str(p))
    assert g.name == "mnist-cdcgan" and g.sample(seeds=[0], labels=[3]).shape == (1, 28, 28, 1)


def test_a_file_with_a_latent_code_loads_as_its_model_and_draws_the_same_digits(tmp_path):
    """The code is part of the architecture the file records: loaded by name, G is rebuilt with it."""
    e = REGISTRY["mnist-dcgan"].with_config(latent_code=10)
    torch.manual_seed(1)
    net = build_generator(e.arch, e.config).eval()
    save_checkpoint(tmp_path / "mnist-dcgan.safetensors", e, net.state_dict())
    g = load_generator(str(tmp_path / "mnist-dcgan.safetensors"))
    assert g.entry.config.latent_code == 10
    z = torch.randn(4, 100)
    with torch.no_grad():
        assert torch.allclose(g.net(z), net(z), atol=1e-6)      # (its memory layout may differ)


def _one_line_error(path):
    with pytest.raises(CheckpointError) as info:
        load_generator(str(path))
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_missing_file(tmp_path):
    assert "not found" in _one_line_error(tmp_path / "absent.safetensors")


def test_zero_byte_file(tmp_path):
    p = tmp_path / "zero.safetensors"
    p.write_bytes(b"")
    assert "empty" in _one_line_error(p)


def test_truncated_file(tmp_path):
    p = tmp_path / "cut.safetensors"
    _save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _one_line_error(p)


def test_garbage_header(tmp_path):
    p = tmp_path / "garbage.safetensors"
    p.write_bytes(b"\xff" * 8 + b"not json at all" * 10)
    assert "safetensors" in _one_line_error(p)


def test_pickle_renamed_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    p = tmp_path / "evil.safetensors"
    p.write_bytes(pickle.dumps(Evil()))
    _one_line_error(p)
    torch.save({"x": torch.zeros(1)}, tmp_path / "torch.safetensors")
    _one_line_error(tmp_path / "torch.safetensors")
    assert not marker.exists()


def test_wrong_tensor_shapes(tmp_path):
    from safetensors.torch import load_file, save_file
    p = tmp_path / "shapes.safetensors"
    _save(p)
    from safetensors import safe_open
    with safe_open(str(p), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(p))
    key = next(k for k in tensors if k.endswith("weight"))
    tensors[key] = torch.zeros(3, 3)
    save_file(tensors, str(p), metadata=meta)
    assert "wrong shape" in _one_line_error(p)


def test_safetensors_without_our_metadata(tmp_path):
    from safetensors.torch import save_file
    p = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    assert "not a gan_demo checkpoint" in _one_line_error(p)


def test_unknown_name_lists_the_registry():
    with pytest.raises(KeyError, match="known models"):
        load_generator("no-such-model")


# --- the loss history shipped beside a checkpoint (weights/<name>-losses.json) ---------------------------------
def _log(n, every=50, **extra):
    return [{"step": every * (i + 1), "d_loss": 1.0 + i % 3, "g_loss": 2.0 - 0.001 * i, "img_per_s": 300.0,
             "elapsed_s": 0.1 * i, **extra} for i in range(n)]


def test_loss_history_round_trip_keeps_every_short_log_record(tmp_path):
    from gan_demo.loss_history import read_loss_history, write_loss_history
    log = _log(240)
    log[7]["d_loss"] = float("nan")                      # a diverged step: a gap, and the file is still valid JSON
    written = write_loss_history(tmp_path / "m-losses.json", log)
    back = read_loss_history(tmp_path / "m-losses.json")
    assert back == written and back.bucket_steps == 1 and back.records == 240
    assert back.step == [r["step"] for r in log]                      # the log's own step numbers
    assert list(back.series) == ["d_loss", "g_loss"]                  # the log's names; throughput and time left out
    assert back.series["g_loss"] == pytest.approx([r["g_loss"] for r in log], rel=1e-4)
    assert back.series["d_loss"][7] is None and "NaN" not in (tmp_path / "m-losses.json").read_text()
    assert back.rows()[7] == {"step": 400, "g_loss": pytest.approx(1.993)}


def test_loss_history_of_a_long_log_averages_step_windows(tmp_path):
    from gan_demo.loss_history import MAX_POINTS, downsample, read_loss_history, write_loss_history
    log = _log(12_345, every=10, wasserstein=0.5)
    log[5000]["g_loss"] = 1000.0                                      # one spike
    h = write_loss_history(tmp_path / "m-losses.json", log)
    assert len(h.step) <= MAX_POINTS and all(len(v) == len(h.step) for v in h.series.values())
    assert len(h.step) > MAX_POINTS * 0.9 and h.step == sorted(h.step) and h.records == 12_345
    assert list(h.series) == ["d_loss", "g_loss", "wasserstein"]
    w = h.bucket_steps
    assert w == 124 and h.step[0] == 70                # the first window, steps 10 … 133: the mean of 10, 20, … 130
    spike = max(range(len(h.step)), key=lambda i: h.series["g_loss"][i])
    assert abs(h.step[spike] - 50_010) < w and 50 < h.series["g_loss"][spike] < 1000     # averaged, not dropped
    assert sum(1 for v in h.series["g_loss"] if v > 10) == 1
    assert (tmp_path / "m-losses.json").stat().st_size < 60_000
    assert read_loss_history(tmp_path / "m-losses.json") == h
    assert len(downsample(log, 10).step) <= 10


@pytest.mark.parametrize("text, message", [
    ("", "not a readable loss history"), ("[1, 2]", "not a loss history"),
    ('{"format": "gan_demo.loss-history", "version": 99, "step": [], "series": {}}', "newer"),
    ('{"format": "gan_demo.loss-history", "version": 1, "step": [1, 2], "series": {"g_loss": [1]}}', "one per step"),
    ('{"format": "gan_demo.loss-history", "version": 1, "step": ["a"], "series": {}}', "list of numbers")])
def test_a_broken_loss_history_is_a_one_line_error(tmp_path, text, message):
    from gan_demo.loss_history import read_loss_history
    p = tmp_path / "m-losses.json"
    p.write_text(text)
    with pytest.raises(ValueError, match=message) as e:
        read_loss_history(p)
    assert "m-losses.json" in str(e.value) and "\n" not in str(e.value)
