"""Checkpoints as outside input: a file rewritten in place while it is read never crashes the reader (no memory-mapped
reads), a half-written file is "not available" until it is whole again, and broken weights are refused at load
(NaN/inf, metadata claiming another model, an architecture config that would allocate gigabytes), also when
fine-tuning, in one line without server paths."""
import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from conftest import ROOT
from gan_demo import CheckpointError, load_generator, save_checkpoint
from gan_demo.app import service
from gan_demo.checkpoint import FORMAT, G_PREFIX
from gan_demo.models import build_generator
from gan_demo.registry import REGISTRY
from test_broken_files import tiny_data
from test_hub import hub_cache, weights  # noqa: F401  (fixtures)
from training.loop import Trainer, TrainingError


def _save(path, name="mnist-gan", edit=None, entry_edit=None):
    """A real checkpoint of `name`, its state changed by edit(state) and its entry dict by entry_edit(d)."""
    e = REGISTRY[name]
    torch.manual_seed(0)
    state = build_generator(e.arch, e.config).state_dict()
    if edit:
        edit(state)
    if entry_edit is None:
        save_checkpoint(path, e, state)
        return path
    d = e.to_dict()
    entry_edit(d)
    meta = {"format": FORMAT, "name": d["name"], "entry": json.dumps(d), "training": "{}", "metrics": "{}",
            "license": e.license}
    save_file({G_PREFIX + k: v.contiguous() for k, v in state.items()}, str(path), metadata=meta)
    return path


def _error(path, name=None) -> str:
    with pytest.raises(CheckpointError) as info:
        load_generator(name or str(path))
    text = str(info.value)
    assert "\n" not in text and len(text) < 400, text
    return text


def _nan(state):
    state["net.0.weight"][0, 0] = float("nan")


def _inf(state):
    state["net.3.weight"][1, 2] = float("-inf")


def test_nan_and_inf_weights_are_refused(tmp_path):
    assert "the weights contain NaN (e.g. generator.net.0.weight)" in _error(_save(tmp_path / "n.safetensors",
                                                                                   edit=_nan))
    assert "the weights contain infinite values" in _error(_save(tmp_path / "i.safetensors", edit=_inf))


def test_nan_directions_are_refused_too(tmp_path):
    e = REGISTRY["mnist-gan"]
    g = build_generator(e.arch, e.config)
    d = {"vectors": torch.full((2, e.latent_dim), float("nan")), "labels": ["a", "b"], "layer": "net.2"}
    save_checkpoint(tmp_path / "d.safetensors", e, g.state_dict(), directions=d)
    assert "contain NaN (e.g. directions)" in _error(tmp_path / "d.safetensors")


def test_a_file_of_another_model_is_refused_under_a_registry_name(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))
    _save(tmp_path / "mnist-gan.safetensors", "mnist-dcgan")          # mnist-dcgan copied over mnist-gan
    assert "holds model 'mnist-dcgan', not 'mnist-gan'" in _error(None, "mnist-gan")


@pytest.mark.parametrize("edit, what", [
    (lambda d: d.update(arch="dcgan"), "arch is 'dcgan'"),
    (lambda d: d.update(dataset="cifar10"), "dataset is 'cifar10'"),
    (lambda d: d["config"].update(num_classes=10), "config num_classes is 10, not 0"),
    (lambda d: d["config"].update(g_hidden=[128, 256, 512, 512]), "config g_hidden"),
])
def test_metadata_that_claims_a_registry_model_it_is_not_is_refused(tmp_path, monkeypatch, edit, what):
    """Loaded as mnist-gan (the app loads registry names so), a file must be mnist-gan through and through."""
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))
    _save(tmp_path / "mnist-gan.safetensors", entry_edit=edit)
    text = _error(None, "mnist-gan")
    assert "claims model 'mnist-gan', which it is not" in text and what in text, text


def test_the_app_refuses_a_file_claiming_its_model_with_another_config(tmp_path, tiny_weights_dir, monkeypatch):
    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights_dir, weights)
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(weights))
    _save(weights / "mnist-gan.safetensors", entry_edit=lambda d: d["config"].update(g_hidden=[128, 256, 512, 512]))
    status = service.model_statuses(service.ModelStore(device="cpu"), load=True)["mnist-gan"]
    assert status.startswith("not available: mnist-gan.safetensors: its metadata claims model 'mnist-gan', which "
                             "it is not (config g_hidden is"), status


def test_metadata_naming_two_models_is_refused(tmp_path):
    p = _save(tmp_path / "two.safetensors")
    from safetensors import safe_open
    with safe_open(str(p), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(p), metadata={**meta, "name": "celeba128-dcgan"})
    assert "corrupt metadata" in _error(p)


@pytest.mark.parametrize("config, message", [
    ({"ngf": 4096}, "out of bounds"),                          # 2**12 channels × 2**4 = tens of G parameters
    ({"ngf": 1024}, "M parameters (at most"),                  # within the per-number bounds, too many in all
    ({"resolution": 10 ** 9}, "out of bounds"),
    ({"z_dim": -1}, "out of bounds"),
    ({"channels": "3"}, "out of bounds"),
])
def test_an_architecture_config_too_large_is_refused_before_anything_is_built(tmp_path, config, message):
    """A file of an unregistered model (so the claims check does not apply) whose config would build a huge
    network: refused from the config alone (the meta device counts the parameters without memory)."""
    def edit(d):
        d["name"] = "huge"
        d["config"].update(config)
    p = _save(tmp_path / "huge.safetensors", "celeba128-dcgan", entry_edit=edit)
    text = _error(p)
    assert "cannot build its architecture" in text and message in text, text


def test_a_text_config_with_a_billion_blocks_is_refused_at_once(tmp_path):
    def edit(d):
        d["name"] = "deep"
        d["config"]["n_blocks"] = 10 ** 9
    assert "n_blocks=1000000000 is out of bounds" in _error(_save(tmp_path / "t.safetensors", "text-wgangp",
                                                                  entry_edit=edit))


def test_an_oversized_file_is_refused_unread(tmp_path, monkeypatch):
    import gan_demo.checkpoint as ck
    monkeypatch.setattr(ck, "MAX_FILE_MB", 1)
    assert "file too large" in _error(_save(tmp_path / "big.safetensors", "mnist-cgan"))     # 3 MB


def test_fine_tuning_from_a_broken_checkpoint_is_one_line_without_server_paths(tmp_path):
    for i, kw in enumerate([dict(edit=_nan), dict(name="mnist-dcgan"), dict(entry_edit=lambda d: d["config"].update(
            g_hidden=[64]))]):
        p = tmp_path / "secret" / f"mnist-gan-{i}.safetensors"
        p.parent.mkdir(exist_ok=True)
        _save(p, **kw)
        with pytest.raises(TrainingError) as info:
            Trainer(REGISTRY["mnist-gan"], tiny_data(), tmp_path / f"run{i}", steps=2, batch=8, progress=False,
                    init_from=p)
        text = str(info.value)
        assert text.startswith(f"cannot fine-tune from {p.name}: ") and "\n" not in text, text
        assert str(tmp_path) not in text and "secret" not in text, text


def test_a_generator_trained_against_another_discriminator_still_loads_as_its_model(tmp_path, monkeypatch):
    """D is not shipped: a checkpoint whose D had no batch norm (a campaign's arch = {d_norm = "none"}) or dropout is
    the same generator, so it loads under its registry name; another z_dim is not."""
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))
    _save(tmp_path / "mnist-dcgan.safetensors", "mnist-dcgan", entry_edit=lambda d: d["config"].update(d_norm="none"))
    assert load_generator("mnist-dcgan").entry.config.d_norm == "none"
    _save(tmp_path / "mnist-gan.safetensors", "mnist-gan", entry_edit=lambda d: d["config"].update(d_dropout=0.3))
    assert load_generator("mnist-gan").entry.config.d_dropout == 0.3
    _save(tmp_path / "mnist-dcgan.safetensors", "mnist-dcgan", entry_edit=lambda d: d["config"].update(z_dim=64))
    assert "config z_dim is 64, not 100" in _error(tmp_path / "mnist-dcgan.safetensors", "mnist-dcgan")


def test_fine_tuning_keeps_the_narrower_widths_a_campaign_shipped(tmp_path):
    """The CPU campaign ships celeba64-dcgan at ngf/ndf 48 (registry: 64): fine-tuning it builds G and D at the
    file's widths and starts from its weights, instead of failing on 'tensors of the wrong shape'."""
    e = REGISTRY["mnist-dcgan"].with_config(ngf=32, ndf=24)
    torch.manual_seed(0)
    state = build_generator(e.arch, e.config).state_dict()
    save_checkpoint(tmp_path / "narrow.safetensors", e, state)
    t = Trainer(REGISTRY["mnist-dcgan"], tiny_data(), tmp_path / "run", steps=2, batch=8, progress=False,
                init_from=tmp_path / "narrow.safetensors")
    assert (t.entry.config.ngf, t.entry.config.ndf) == (32, 24)
    assert all(torch.equal(v, state[k]) for k, v in t.G.state_dict().items())
    assert t.D.net[0].out_channels == 24
    t.train()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["entry"]["config"]["ngf"] == 32


# --- files rewritten while they are read ------------------------------------------------------------------------
def test_a_half_written_file_is_not_available_until_it_is_whole_again(tmp_path, tiny_weights_dir, monkeypatch):
    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights_dir, weights)
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(weights))
    store = service.ModelStore(device="cpu")
    target = weights / "mnist-dcgan.safetensors"
    good = target.read_bytes()
    assert len(service.generate("mnist-dcgan", 0, 2, store=store).images) == 2
    with open(target, "r+b") as f:            # as `cp` does it: truncate in place, then write
        f.truncate(0)
        f.write(good[: len(good) // 2])
    with pytest.raises(ValueError, match="mnist-dcgan is not available: mnist-dcgan.safetensors: "):
        service.generate("mnist-dcgan", 0, 2, store=store)
    assert store.status("mnist-dcgan").startswith("not available")
    with open(target, "r+b") as f:
        f.seek(len(good) // 2)
        f.write(good[len(good) // 2:])
    assert len(service.generate("mnist-dcgan", 0, 2, store=store).images) == 2       # recovered by itself
    assert store.status("mnist-dcgan") == "ready"


def test_a_file_changing_during_the_read_is_refused(tmp_path, monkeypatch):
    """The read checks the file did not change under it (size and mtime before and after)."""
    import gan_demo.checkpoint as ck
    p = _save(tmp_path / "m.safetensors")
    real_fstat, calls = ck.os.fstat, []

    def fstat(fd):                            # the second look sees another size: a writer got in between
        st = real_fstat(fd)
        calls.append(1)
        return st if len(calls) == 1 else type("S", (), {"st_size": st.st_size + 1, "st_mtime_ns": 0})()
    monkeypatch.setattr(ck.os, "fstat", fstat)
    assert "changed while it was read" in _error(p)


READER = r"""
import os, subprocess, sys, time
sys.path.insert(0, sys.argv[3])
from gan_demo import CheckpointError, generator_from_checkpoint
source, path = sys.argv[1], sys.argv[2]
# another process copies the file over the checkpoint (cp truncates and writes in place), again and again
# (while this process lives: if it dies, the loop ends too)
cp = subprocess.Popen(["bash", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do cp '{source}' '{path}'; done"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
ok = refused = 0
end = time.monotonic() + 30
while time.monotonic() < end and (refused < 3 or ok + refused < 10):
    try:
        generator_from_checkpoint(path, "cpu")
        ok += 1
    except CheckpointError:
        refused += 1
os.killpg(cp.pid, 9)                              # the loop and a `cp` it may be running (else it writes on)
cp.wait()
subprocess.run(["cp", source, path], check=True)
generator_from_checkpoint(path, "cpu")            # whole again: loads
print(ok, refused)
"""


def test_loads_racing_an_in_place_rewrite_never_crash_the_process(tmp_path):
    """Memory-mapped reads died here with SIGBUS (exit -7) when the file shrank under the mapping."""
    source = _save(tmp_path / "source.safetensors", "mnist-cgan")          # 3 MB: a copy takes a while
    shutil.copy(source, tmp_path / "m.safetensors")
    r = subprocess.run([sys.executable, "-c", READER, str(source), str(tmp_path / "m.safetensors"), str(ROOT)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    ok, refused = map(int, r.stdout.split())
    assert refused > 0, f"no read overlapped a rewrite ({ok} loads): the test proved nothing"


def test_a_hub_cache_file_rewritten_in_place_is_not_available_until_whole(hub_cache, monkeypatch):
    """The same for a checkpoint in the Hugging Face cache (a symlink to a blob), with GAN_DEMO_HUB_REPO."""
    monkeypatch.setenv("GAN_DEMO_HUB_REPO", "acme/gan-weights")
    store = service.ModelStore(device="cpu")
    assert len(service.generate("mnist-gan", 0, 2, store=store).images) == 2
    blob = service.weights_path("mnist-gan").resolve()
    good = blob.read_bytes()
    blob.write_bytes(good[: len(good) // 3])               # truncated and being written
    with pytest.raises(ValueError, match="mnist-gan is not available"):
        service.generate("mnist-gan", 0, 2, store=store)
    blob.write_bytes(good)
    assert len(service.generate("mnist-gan", 0, 2, store=store).images) == 2


def test_a_narrower_network_of_the_same_model_loads_under_its_name(tmp_path, monkeypatch):
    """Campaigns train narrower networks than the registry's defaults; the file records its own widths."""
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))
    import dataclasses
    from gan_demo import load_generator
    from gan_demo.checkpoint import save_checkpoint
    from gan_demo.models import build_generator
    from gan_demo.registry import REGISTRY
    entry = REGISTRY["mnist-dcgan"]
    narrow = dataclasses.replace(entry, config={**entry.config, "ngf": 16})
    save_checkpoint(tmp_path / "mnist-dcgan.safetensors", narrow, build_generator("dcgan", narrow.config).state_dict())
    g = load_generator("mnist-dcgan")
    assert g.entry.config["ngf"] == 16 and g.sample([0]).shape == (1, 28, 28, 1)
