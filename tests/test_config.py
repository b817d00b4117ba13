"""Typed architecture configs and immutable registry entries; the one data-root resolver; the one validator."""
import dataclasses
import json

import pytest
import torch

from gan_demo import load_generator, read_checkpoint, save_checkpoint
from gan_demo.checkpoint import CheckpointError
from gan_demo.config import DCGANConfig, MLPConfig, TextConfig, config_from_dict
from gan_demo.models import build_generator, count_parameters
from gan_demo.registry import REGISTRY, ModelEntry


# --- typed configs ------------------------------------------------------------------------------------------------
def test_each_architecture_has_its_config_type_with_its_defaults():
    assert {type(e.config) for e in REGISTRY.values()} == {MLPConfig, DCGANConfig, TextConfig}
    dc = config_from_dict("dcgan", {"z_dim": 100, "resolution": 32, "channels": 3})
    assert (dc.ngf, dc.ndf, dc.d_norm, dc.num_classes) == (64, 64, "batch", 0)
    assert config_from_dict("mlp", {"z_dim": 8, "resolution": 28, "channels": 1}).g_hidden == (128, 256, 512)
    with pytest.raises(ValueError, match="no setting 'widht'"):
        config_from_dict("dcgan", {"z_dim": 1, "resolution": 28, "channels": 1, "widht": 3})


def test_registry_entries_are_immutable_and_variants_are_new_entries():
    e = REGISTRY["mnist-dcgan"]
    with pytest.raises(TypeError):
        REGISTRY["mnist-dcgan"] = e                           # the catalogue is read-only
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.config.ngf = 32
    narrow = e.with_config(ngf=16, ndf=16)
    assert narrow.config.ngf == 16 and REGISTRY["mnist-dcgan"].config.ngf == 64
    assert narrow == dataclasses.replace(e, config={**e.config, "ngf": 16, "ndf": 16})    # a mapping is read too
    assert count_parameters(build_generator(narrow.arch, narrow.config)) < \
        0.2 * count_parameters(build_generator(e.arch, e.config))
    assert e.with_recipe(steps=7).recipe.steps == 7 and e.recipe.steps == 3000


def test_a_checkpoint_records_its_own_architecture(tmp_path):
    e = REGISTRY["mnist-dcgan"].with_config(ngf=16)
    net = build_generator(e.arch, e.config, generator=torch.Generator().manual_seed(0))
    save_checkpoint(tmp_path / "narrow.safetensors", e, net.state_dict())
    entry, _, _ = read_checkpoint(tmp_path / "narrow.safetensors")
    assert entry.config == e.config and isinstance(entry.config, DCGANConfig)
    g = load_generator(str(tmp_path / "narrow.safetensors"), device="cpu")
    assert g.num_parameters == count_parameters(net) and g.sample([0]).shape == (1, 28, 28, 1)


def test_older_checkpoints_with_a_plain_partial_config_still_load(tmp_path):
    """Files written before the typed configs hold a plain dict without the defaults (no num_classes here)."""
    e = REGISTRY["mnist-gan"]
    old = {**e.to_dict(), "config": {"resolution": 28, "channels": 1, "z_dim": 100,
                                     "g_hidden": [128, 256, 512], "d_hidden": [512, 256, 128]}}
    path = tmp_path / "old.safetensors"
    net = build_generator(e.arch, e.config)
    save_checkpoint(path, e, net.state_dict())
    from safetensors import safe_open
    from safetensors.torch import save_file
    with safe_open(str(path), "pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())
    save_file(tensors, str(path), metadata={**meta, "entry": json.dumps(old)})
    entry, _, _ = read_checkpoint(path)
    assert entry == e
    bad = {**old, "config": {**old["config"], "depth": 3}}
    save_file(tensors, str(path), metadata={**meta, "entry": json.dumps(bad)})
    with pytest.raises(CheckpointError, match="corrupt metadata.*no setting 'depth'"):
        read_checkpoint(path)


def test_the_text_vocabulary_travels_in_the_config_without_touching_the_registry(tmp_path):
    from training.data import TextData
    from training.loop import Trainer
    from gan_demo.text_codec import TextCodec
    codec = TextCodec(max_len=16)
    rows = [codec.encode(s) for s in ["a cat.", "the dog!", "hello there."]]
    data = TextData(torch.tensor(rows), codec, ["a cat."], "three lines")
    registry_entry = REGISTRY["text-wgangp"]
    small = registry_entry.with_config(dim=16, n_blocks=1)
    t = Trainer(small, data, tmp_path / "run", steps=1, batch=3, device="cpu", progress=False)
    assert t.entry.config.vocab == tuple(codec.vocab) and t.entry.config.seq_len == 16
    assert REGISTRY["text-wgangp"] is registry_entry and registry_entry.config.vocab is None
    t.train()
    entry, _, _ = read_checkpoint(tmp_path / "run" / "generator.safetensors")
    assert entry.config == t.entry.config


def test_model_entry_round_trips_through_json():
    for e in REGISTRY.values():
        assert ModelEntry.from_dict(json.loads(json.dumps(e.to_dict()))) == e


# --- one data-root resolver ---------------------------------------------------------------------------------------
def _mnist_files(folder, size=16):
    from gan_demo.paths import MNIST_FILES
    raw = folder / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in MNIST_FILES:
        (raw / f).write_bytes(b"x" * size)


def test_empty_or_partial_dataset_folders_are_skipped_by_every_front_end(tmp_path, monkeypatch):
    """./data holds what a failed download leaves (an empty MNIST folder, an empty corpus, MNIST without its test
    files); ../shared/data holds the real ones: the CLI's default, the Train tab and the Text tab all take those."""
    from gan_demo import paths
    from gan_demo.app import service
    from gan_demo.app.jobs import data as job_data
    repo = tmp_path / "repo"
    monkeypatch.delenv("GAN_DEMO_DATA", raising=False)
    monkeypatch.setattr(paths, "REPO", repo)
    local, shared = repo / "data", tmp_path / "shared" / "data"
    (local / "mnist" / "MNIST" / "raw").mkdir(parents=True)
    (local / "text").mkdir(parents=True)
    (local / "text" / "lines.txt").write_text("")
    _mnist_files(shared)
    (shared / "text").mkdir()
    (shared / "text" / "lines.txt").write_text("a real line.\n")
    assert paths.data_roots() == [local, shared]
    assert paths.find_data("mnist") == shared and paths.find_data("text") == shared
    assert paths.data_root("text") == shared and paths.data_root("cifar10") == local   # (where a download goes)
    assert service.corpus_path() == shared / "text" / "lines.txt"
    assert job_data.trainable_models() == [n for n, e in REGISTRY.items() if e.dataset in ("mnist", "text")]
    from training.data import load_dataset
    assert load_dataset("text", None).source.endswith(f"({shared / 'text' / 'lines.txt'})")
    (local / "mnist" / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"x")   # still partial
    assert paths.find_data("mnist") == shared
    _mnist_files(tmp_path / "complete")
    monkeypatch.setenv("GAN_DEMO_DATA", str(tmp_path / "complete"))                     # set: used alone
    assert paths.data_roots() == [tmp_path / "complete"] and paths.find_data("mnist") == tmp_path / "complete"
    assert paths.find_data("text") is None and service.corpus_path() is None


# --- one validator ------------------------------------------------------------------------------------------------
def test_one_wording_for_bad_numbers_in_the_service_the_job_manager_and_seeds():
    from gan_demo import validate
    from gan_demo.app.jobs import LiveError
    from gan_demo.latents import check_seed
    with pytest.raises(ValueError, match=r"^seed must be from 0 to 4294967295, got -1$"):
        check_seed(-1)
    with pytest.raises(LiveError, match=r"^steps must be a whole number from 1 to 300, got 1.5$"):
        validate.whole(1.5, "steps", 1, 300, LiveError)
    with pytest.raises(ValueError, match=r"^truncation must be a number from 0.1 to 1, got nan$"):
        validate.number(float("nan"), "truncation", 0.1, 1.0)
    with pytest.raises(ValueError, match=r"^truncation must be a number from 0.1 to 1, got nothing$"):
        validate.number(None, "truncation", 0.1, 1.0)           # an emptied box in the app: not "got None"
    assert validate.whole(3.0, "x", 0, 5) == 3 and validate.seed(2 ** 32 - 1) == 2 ** 32 - 1
