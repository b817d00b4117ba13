"""Hugging Face Hub without a network: checkpoints resolved from a pre-populated Hub cache with HF_HUB_OFFLINE=1,
one-line errors, and `push --dry-run` (its files and its model card's YAML)."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gan_demo import hub, load_generator
from gan_demo.checkpoint import read_checkpoint, save_checkpoint
from gan_demo.generator import resolve_weights
from gan_demo.hub import HubError, HubRef, parse

ROOT = Path(__file__).resolve().parent.parent
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def populate(cache: Path, repo: str, files: dict, commit: str = COMMIT, ref: str | None = "main") -> Path:
    """Lay files out as huggingface_hub's cache does: blobs/<hash>, snapshots/<commit>/<name> → blob, refs/<ref>."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    snap = folder / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    (folder / "blobs").mkdir(exist_ok=True)
    for name, src in files.items():
        blob = folder / "blobs" / hashlib.sha256(Path(src).read_bytes()).hexdigest()
        shutil.copyfile(src, blob)
        (snap / name).symlink_to(os.path.relpath(blob, snap))
    if ref:
        (folder / "refs").mkdir(exist_ok=True)
        (folder / "refs" / ref).write_text(commit)
    return snap


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from app_process import make_tiny_weights
    return make_tiny_weights(tmp_path_factory.mktemp("weights"),
                             ["mnist-gan", "mnist-dcgan", "mnist-cdcgan", "text-wgangp"], directions=False)


@pytest.fixture
def hub_cache(tmp_path, weights, monkeypatch):
    cache = tmp_path / "hf" / "hub"
    w = weights
    populate(cache, "acme/mnist-gan", {"mnist-gan.safetensors": w / "mnist-gan.safetensors"})
    # a second revision, reachable by its commit hash only
    populate(cache, "acme/mnist-gan", {"mnist-gan.safetensors": w / "mnist-dcgan.safetensors"}, OTHER_COMMIT, None)
    populate(cache, "acme/gan-weights", {f"{n}.safetensors": w / f"{n}.safetensors"
                                         for n in ("mnist-gan", "mnist-cdcgan", "text-wgangp")})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GAN_DEMO_HUB_REPO", raising=False)
    monkeypatch.setattr(hub, "_resolved", {})          # no paths remembered from another test's cache
    return cache


def test_references_parse():
    assert parse("acme/m") == HubRef("acme/m", None, None)
    assert parse("acme/m@v1.0") == HubRef("acme/m", None, "v1.0")
    assert parse("acme/w:mnist-gan@" + COMMIT) == HubRef("acme/w", "mnist-gan.safetensors", COMMIT)
    assert parse("hf://acme/w/sub/x.safetensors") == HubRef("acme/w", "sub/x.safetensors", None)
    assert parse("hf://acme/w@refs%2Fpr%2F3/x.safetensors") == HubRef("acme/w", "x.safetensors", "refs/pr/3")
    for bad in ("hf://acme", "acme/m:a:b", "a/b/c"):
        with pytest.raises(HubError):
            parse(bad)
    # local paths keep their meaning: a *.safetensors path (even a missing one) is a file, not a repository
    assert resolve_weights("runs/x/generator.safetensors") == Path("runs/x/generator.safetensors")
    with pytest.raises(KeyError, match="unknown model"):
        resolve_weights("no-such-model")


def test_load_from_the_hub_cache_offline(hub_cache):
    g = load_generator("acme/mnist-gan", device="cpu")                     # the repo's one checkpoint
    assert g.name == "mnist-gan" and g.sample(seeds=[0, 1]).shape == (2, 28, 28, 1)
    assert g.path.is_relative_to(hub_cache) and g.path.parent.name == COMMIT
    assert load_generator("acme/mnist-gan@" + OTHER_COMMIT).name == "mnist-dcgan"   # a revision pin
    assert load_generator("hf://acme/mnist-gan@main/mnist-gan.safetensors").path == g.path
    assert load_generator("acme/gan-weights:mnist-cdcgan").entry.num_classes == 10
    assert load_generator("acme/gan-weights:text-wgangp").sample_text(seeds=[0])


def test_registry_names_from_a_hub_repo(hub_cache, tmp_path, monkeypatch):
    """GAN_DEMO_HUB_REPO (what the app's --hub-repo sets): registry names come from the repo, not weights/."""
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("GAN_DEMO_HUB_REPO", "acme/gan-weights")
    assert load_generator("mnist-cdcgan").path.parent.name == COMMIT
    with pytest.raises(HubError, match="mnist-dcgan.safetensors is not in the Hub cache"):
        resolve_weights("mnist-dcgan")
    monkeypatch.setenv("GAN_DEMO_HUB_REPO", "acme/gan-weights:mnist-gan")
    with pytest.raises(HubError, match="expected owner/repo or owner/repo@revision"):
        resolve_weights("mnist-gan")


def test_offline_and_not_cached_says_so(hub_cache):
    for ref, needle in [("acme/absent", "its checkpoint is not in the Hub cache"),
                        ("acme/mnist-gan@v9", "is not in the Hub cache"),
                        ("acme/gan-weights:mnist-wgangp", "mnist-wgangp.safetensors is not in the Hub cache")]:
        with pytest.raises(HubError) as e:
            load_generator(ref)
        msg = str(e.value)
        assert "\n" not in msg and needle in msg and "HF_HUB_OFFLINE is set" in msg and str(hub_cache) in msg, msg
    with pytest.raises(HubError, match=r"holds 3 checkpoints \(mnist-cdcgan, mnist-gan, text-wgangp\): name one, "
                                       r"e.g. acme/gan-weights:mnist-cdcgan"):
        load_generator("acme/gan-weights")


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_cli_samples_from_the_hub_cache(hub_cache, tmp_path):
    env = {"HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"}
    r = run("sample", "acme/mnist-gan@" + COMMIT, "--seeds", "0-3", "--out", str(tmp_path / "g.png"), env=env)
    assert r.returncode == 0 and (tmp_path / "g.png").is_file(), r.stderr
    r = run("sample", "acme/absent", env=env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "HF_HUB_OFFLINE is set" in lines[0], r.stderr


def _card(text: str) -> dict:
    from huggingface_hub import ModelCard
    return ModelCard(text).data.to_dict()          # parses and validates the YAML (model-index included)


def test_push_dry_run_lists_the_files_and_the_card(tmp_path, weights):
    entry, state, meta = read_checkpoint(weights / "mnist-cdcgan.safetensors")
    weights = tmp_path / "weights"
    save_checkpoint(weights / "mnist-cdcgan.safetensors", entry, state, training=meta["training"],
                    metrics={"classifier_fid": 12.5, "conditional_accuracy": 0.91, "classifier_fid_samples": 10000})
    env = {"GAN_DEMO_WEIGHTS_DIR": str(weights), "HF_HUB_OFFLINE": "1"}     # a dry run needs no network
    r = run("push", "mnist-cdcgan", "--repo", "acme/gan-demo", "--dry-run", env=env)
    assert r.returncode == 0, r.stderr
    head, readme = r.stdout.split("--- README.md " + "-" * 66 + "\n", 1)
    listed = [line.split()[0] for line in head.splitlines()[1:]]
    assert "nothing was uploaded" in head.splitlines()[0]
    assert listed == ["mnist-cdcgan.safetensors", "mnist-cdcgan.md", "README.md"]
    assert f"{(weights / 'mnist-cdcgan.safetensors').stat().st_size:,d} bytes" in head
    card = _card(readme)
    assert card["library_name"] == "gan_demo" and card["license"] == "cc-by-sa-3.0"
    assert {"gan", "cdcgan", "mnist", "class-conditional"} <= set(card["tags"])
    assert card["datasets"] == ["ylecun/mnist"]
    assert card["metrics"] == ["classifier_fid", "conditional_accuracy"]             # measured values only
    values = {m["type"]: m["value"] for m in card["model-index"][0]["results"][0]["metrics"]}
    assert values == {"classifier_fid": 12.5, "conditional_accuracy": 0.91}
    assert "# mnist-cdcgan" in readme and 'load_generator("acme/gan-demo:mnist-cdcgan")' in readme
    r = run("push", "mnist-cdcgan", "--repo", "acme/gan-demo", env=env)      # a real upload, but offline
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: HF_HUB_OFFLINE is set: cannot upload (--dry-run shows what would be uploaded)")
    r = run("push", "mnist-cdcgan", "--repo", "not a repo", "--dry-run", env=env)
    assert r.returncode == 2 and "expected owner/name" in r.stderr


def test_push_stages_a_run_folder_like_export(tmp_path):
    """A run folder goes up in the shipped format (fp16, latent directions), named after its model."""
    import torch
    from gan_demo.registry import REGISTRY
    from training.data import ImageData
    from training.loop import Trainer
    from training.push import push
    data = ImageData(torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8), None, "synthetic")
    Trainer(REGISTRY["mnist-gan"], data, tmp_path / "run", steps=2, batch=8, device="cpu", log_every=1,
            sample_every=2, progress=False).train()
    printed = []
    names = push(str(tmp_path / "run"), "acme/gan-demo", dry_run=True, out=printed.append)
    assert names == ["mnist-gan.safetensors", "mnist-gan.md", "README.md"]
    card = _card(printed[-1])
    assert card["license"] == "cc-by-sa-3.0" and card["pipeline_tag"] == "unconditional-image-generation"
    assert "metrics" not in card                       # nothing measured yet: no metrics claimed
    assert "- steps: 2" in printed[-1]
    from gan_demo.checkpoint import G_PREFIX, read_checkpoint, read_safetensors
    from training.push import stage
    staged = stage(str(tmp_path / "run"), "acme/gan-demo", tmp_path / "staged")
    tensors = read_safetensors(staged.files[0])[1]     # the shipped format: fp16 storage, directions measured
    assert {v.dtype for k, v in tensors.items() if k.startswith(G_PREFIX) and v.is_floating_point()} == {torch.float16}
    assert read_checkpoint(staged.files[0])[2]["directions"]


def test_app_shows_a_model_missing_from_the_hub_repo_as_not_available(tmp_path, monkeypatch):
    from gan_demo.app import service
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GAN_DEMO_HUB_REPO", "acme/absent")
    store = service.ModelStore(device="cpu")
    assert store.status("mnist-gan").startswith("not available:")
    with pytest.raises(ValueError, match="not available"):
        store.get("mnist-gan")
