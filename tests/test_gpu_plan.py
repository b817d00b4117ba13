"""The GPU plan (scripts/gpu_plan.sh, training/gpu_plan.py): its CPU rehearsal runs end to end and packs the same
files as the GPU run; bad input (no CUDA, missing data) is one line with the manifest and log still written;
packing never exceeds the device's limits; the plan's checkpoints fit them; parallel decoding changes no pixel."""
import argparse
import io
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, SHARED_DATA
from gan_demo import load_generator
from gan_demo.models import build_generator
from training import data as data_mod
from training import gpu_plan
from training.campaign import load_plan

MIB = 1 << 20
SCRIPT = ROOT / "scripts" / "gpu_plan.sh"


def run_script(*args, env=None, timeout=60):
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def check_limits(out):
    files = sorted(p for p in out.iterdir())
    assert all(p.is_file() for p in files) and len(files) <= gpu_plan.MAX_FILES, files
    assert all(p.stat().st_size <= gpu_plan.MAX_FILE for p in files)
    assert sum(p.stat().st_size for p in files) <= gpu_plan.MAX_TOTAL
    assert {"manifest.json", "log.txt"} <= {p.name for p in files}
    return json.loads((out / "manifest.json").read_text())


# --- the plan itself ----------------------------------------------------------------------------------------------
def test_the_gpu_plan_loads_and_its_checkpoints_fit_the_device_limits():
    plan = load_plan(ROOT / "training" / "plans" / "gpu.toml", check_data=False)
    assert [r.entry.name for r in plan.runs] == ["celeba128-dcgan", "celeba128-wgangp", "text-wgangp",
                                                  "celeba64-dcgan"]
    assert plan.parallel == 4 and all(r.device == "cuda" and r.hours for r in plan.runs)
    assert plan.get("celeba128-wgangp").entry.latent_dim == 128
    for r in plan.runs:
        config = dict(r.entry.config)
        if r.entry.is_text:
            config.update(vocab=list("abcdefghijklmnopqrstuvwxyz .,'?!-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
                          seq_len=64)
        g = build_generator(r.entry.arch, config)
        fp16 = 2 * sum(v.numel() for v in g.state_dict().values() if v.is_floating_point())
        assert fp16 < gpu_plan.MAX_FILE - MIB, (r.name, fp16 / MIB)       # a MiB left for metadata, directions


def test_the_rehearsal_plan_is_the_same_runs_on_the_cpu_at_toy_sizes(tmp_path):
    path = gpu_plan.effective_plan(tmp_path, True, gpu_plan.plan_models())
    plan = load_plan(path, check_data=False)
    assert [r.name for r in plan.runs] == gpu_plan.plan_models()
    assert plan.runs_dir == tmp_path / "runs"
    for r in plan.runs:
        assert r.device == "cpu" and r.steps == gpu_plan.REHEARSAL_RUN["steps"]
        assert all(v <= 16 for k, v in r.arch_overrides.items())
    only_text = load_plan(gpu_plan.effective_plan(tmp_path, False, ["text-wgangp"]), check_data=False)
    assert [r.name for r in only_text.runs] == ["text-wgangp"] and only_text.runs[0].device == "cuda"


# --- packing --------------------------------------------------------------------------------------------------
def pack(tmp_path, files: dict):
    """Job.pack over a stage holding `files` (relative path → bytes) → (the job, its checked manifest)."""
    a = argparse.Namespace(started=None, rehearse=True, budget=60, data=tmp_path, out=tmp_path / "out",
                           work=tmp_path / "work", inception=None)
    job = gpu_plan.Job(a)
    job.out.mkdir()
    for name, data in files.items():
        (job.stage / name).parent.mkdir(parents=True, exist_ok=True)
        (job.stage / name).write_bytes(data)
    job.log_file = open(job.out / "log.txt", "w")
    job.pack()
    job.log_file.close()
    return job, check_limits(job.out)


def test_packing_splits_or_leaves_out_what_exceeds_the_limits(tmp_path):
    rng = np.random.default_rng(0)
    job, m = pack(tmp_path, {**{f"model{i}.safetensors": rng.bytes(MIB) for i in range(6)},   # six 1 MiB checkpoints,
                             "huge.safetensors": rng.bytes(17 * MIB),                          # one over 16 MiB
                             "notes.json": b"{}",
                             "anim.gif": rng.bytes(30 * MIB),     # incompressible: the bundle cannot hold it
                             # a kept D travels in the bundle, after the GIF
                             "discriminators/model0.safetensors": rng.bytes(3 * MIB)})
    assert any("huge.safetensors" in x for x in m["left_out"]) and any("anim.gif" in x for x in m["left_out"])
    assert "notes.json" in m["files"]["results.tar.gz"]["holds"]
    assert "discriminators/model0.safetensors" in m["files"]["results.tar.gz"]["holds"]
    assert len([f for f in m["files"] if f.endswith(".safetensors")]) == 5          # 8 − manifest, log, bundle
    assert set(m["files"]) | {"manifest.json", "log.txt"} == {p.name for p in job.out.iterdir()}


def test_a_results_bundle_over_16_mib_travels_in_parts_that_join_back(tmp_path):
    rng = np.random.default_rng(0)
    big = rng.bytes(20 * MIB)                                     # incompressible, and not one that may be dropped
    job, m = pack(tmp_path, {"model0.safetensors": rng.bytes(MIB), "model1.safetensors": rng.bytes(MIB),
                             "metrics/big.bin": big})
    parts = sorted(job.out.glob("results.tar.gz.part*"))
    assert [p.name for p in parts] == ["results.tar.gz.part0", "results.tar.gz.part1"] and not m["left_out"]
    assert all(p.stat().st_size <= gpu_plan.MAX_FILE for p in parts)
    assert "metrics/big.bin" in m["files"]["results.tar.gz.part0"]["holds"]
    joined = tmp_path / "joined.tar.gz"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(joined) as tar:
        assert tar.extractfile("metrics/big.bin").read() == big


# --- bad input ------------------------------------------------------------------------------------------------
def _one_error_line(stderr, needle):
    lines = [x for x in stderr.splitlines() if x.startswith("error:")]
    assert len(lines) >= 1 and needle in lines[0], stderr
    return lines


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the plan would really run")
def test_no_cuda_says_so_in_one_line_and_still_writes_manifest_and_log(tmp_path):
    (tmp_path / "data").mkdir()
    r = run_script(tmp_path / "data", tmp_path / "out", env={"GPU_PLAN_WORK": str(tmp_path / "work")})
    assert r.returncode == 1
    assert _one_error_line(r.stderr, "no CUDA device") == [x for x in r.stderr.splitlines() if x.strip()]
    m = check_limits(tmp_path / "out")
    assert m["complete"] is False and "no CUDA device" in m["problems"][0]
    assert "no CUDA device" in (tmp_path / "out" / "log.txt").read_text()


def test_missing_data_says_so_in_one_line_and_still_writes_manifest_and_log(tmp_path):
    r = run_script("--rehearse", tmp_path / "nowhere", tmp_path / "out", env={"GPU_PLAN_WORK": str(tmp_path / "w")})
    assert r.returncode == 1
    _one_error_line(r.stderr, "missing data")
    m = check_limits(tmp_path / "out")
    assert "does not exist" in m["problems"][0] and m["steps"]["preflight"]["ok"] is False


def test_a_missing_archive_skips_only_the_runs_that_need_it(tmp_path, capsys):
    (tmp_path / "data" / "text").mkdir(parents=True)
    (tmp_path / "data" / "text" / "lines.txt").write_text("A short line.\n" * 30)
    a = argparse.Namespace(started=None, rehearse=True, budget=60, data=tmp_path / "data", out=tmp_path / "out",
                           work=tmp_path / "work", inception=None)
    job = gpu_plan.Job(a)
    job.out.mkdir()
    job.preflight()
    assert job.models == ["text-wgangp"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: missing data: no CelebA archive"), err
    assert "skipping celeba128-dcgan, celeba128-wgangp, celeba64-dcgan" in err[0]


def test_usage_and_unwritable_output_are_one_line(tmp_path):
    r = run_script("only-one-arg")
    assert r.returncode == 2 and r.stderr.startswith("usage:")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_script("--rehearse", tmp_path, blocker / "out")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"error: cannot write to the output folder "
                                                                   f"'{blocker / 'out'}'"]


# --- parallel decoding ----------------------------------------------------------------------------------------
def test_parallel_decoding_gives_the_same_pixels_in_the_same_order(monkeypatch):
    rng = np.random.default_rng(1)
    blobs = []
    for _ in range(1000):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(buf, "PNG")
        blobs.append(buf.getvalue())
    blobs[7] = b"not an image"
    monkeypatch.setenv("GAN_DEMO_DECODE_WORKERS", "1")
    serial = data_mod._decode_many(blobs, 16, 3)
    monkeypatch.setenv("GAN_DEMO_DECODE_WORKERS", "2")
    parallel = data_mod._decode_many(blobs, 16, 3)
    assert serial[7] is None and parallel[7] is None
    assert all(np.array_equal(a, b) for a, b in zip(serial, parallel) if a is not None)
    assert len(parallel) == 1000 and parallel[0].shape == (3, 16, 16)


# --- the rehearsal ------------------------------------------------------------------------------------------------
@pytest.fixture
def rehearsal_data(tmp_path):
    """2,100 of the offline faces (so 1,000 are held out, as in the full set) and 3,000 sentences."""
    faces, text = SHARED_DATA / "celeba" / "celeba128-webp.tar.gz", SHARED_DATA / "text" / "lines.txt"
    if not faces.is_file() or not text.is_file():
        pytest.skip("offline CelebA archive or text corpus not present")
    root = tmp_path / "data"
    (root / "celeba").mkdir(parents=True)
    (root / "text").mkdir()
    with tarfile.open(faces) as src, tarfile.open(root / "celeba" / "celeba128-webp.tar.gz", "w:gz") as dst:
        n = 0
        for m in src:
            if m.isfile() and n < 2100:
                dst.addfile(m, src.extractfile(m))
                n += 1
    lines = text.read_text(encoding="utf-8").splitlines()[:3000]
    (root / "text" / "lines.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_the_rehearsal_trains_measures_and_packs_the_same_files_as_the_gpu_run(tmp_path, rehearsal_data,
                                                                              monkeypatch):
    out = tmp_path / "out"
    r = run_script("--rehearse", rehearsal_data, out, env={"GPU_PLAN_WORK": str(tmp_path / "work")}, timeout=300)
    print(r.stdout[-3000:], r.stderr[-3000:])
    m = check_limits(out)
    models = gpu_plan.plan_models()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{x}.safetensors" for x in models] + ["results.tar.gz", "manifest.json", "log.txt"])
    assert m["wall_s"] <= m["budget_s"] + 1
    for step in ("preflight", "data", "inception", "train", "export", "evaluate", "compare devices"):
        assert m["steps"][step]["ok"], (step, m["steps"][step], m["problems"])
    # the bench runs last with the time left: on a busy CPU it may be skipped, never silently; nothing else may fail
    assert m["steps"]["bench"]["ok"] or "skipped" in m["steps"]["bench"]["note"], m["steps"]["bench"]
    assert all(p.startswith("bench failed: RuntimeError: skipped") for p in m["problems"]), m["problems"]
    assert r.returncode == (1 if m["problems"] else 0), (r.returncode, m["problems"])
    for model in models:
        g = load_generator(str(out / f"{model}.safetensors"), device="cpu")
        assert m["runs"][model]["snapshot"] == "best" and m["runs"][model]["evaluations"] >= 1
        if g.entry.is_text:
            assert {"js_4gram", "word_validity"} <= set(g.metrics)
        else:
            assert {"fid", "kid", "memorisation_nn_gen_median", "memorisation_ratio"} <= set(g.metrics)
            assert g.directions is not None and g.training_info["hardware"].startswith("CPU")
    with tarfile.open(out / "results.tar.gz") as t:
        names = set(t.getnames())
    for model in models:
        assert {f"{model}.md", f"{model}-losses.png", f"{model}-losses.json", f"runs/{model}/campaign.log"} <= names
        if not model.startswith("text"):
            assert {f"{model}-grid.png", f"{model}-directions.png", f"{model}-progress.gif"} <= names
        assert f"discriminators/{model}.safetensors" in names      # (toy sizes: every one is under 8 MiB)
    assert {"metrics.json", "devices.json", "plan.toml"} <= names
    devices = json.loads(tarfile.open(out / "results.tar.gz").extractfile("devices.json").read())
    assert all(f"new {x}" in devices["models"] for x in models)
    check_adopt(out, models, tmp_path / "weights", monkeypatch)


def check_adopt(out, models, weights, monkeypatch):
    """Back home: `adopt` ships what beats the shipped checkpoints (here: nothing shipped yet), then nothing."""
    said = []
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(weights))
    assert gpu_plan.adopt(out, out=said.append) == models, said
    for model in models:
        files = {f"{model}.safetensors", f"{model}.md", f"{model}-losses.json", f"{model}-losses.png"}
        if not model.startswith("text"):
            files |= {f"{model}-progress.gif", f"{model}-samples.png"}     # grid beside: not the repo's weights/
        assert files <= {p.name for p in weights.iterdir()}, (model, sorted(p.name for p in weights.iterdir()))
        assert load_generator(str(weights / f"{model}.safetensors")).metrics == \
            load_generator(str(out / f"{model}.safetensors")).metrics
        # its discriminator is kept beside it, for the CPU campaign's warm start
        from training.export import read_discriminator
        assert read_discriminator(weights / "discriminators" / f"{model}.safetensors")[1] > 0
    said.clear()
    assert gpu_plan.adopt(out, out=said.append) == [] and all("does not beat the shipped" in x for x in said)
    assert gpu_plan.adopt(out, force=True, out=said.append) == models
    with pytest.raises(gpu_plan.AdoptError, match="no manifest.json"):
        gpu_plan.adopt(weights)
    r = subprocess.run([sys.executable, "-m", "training", "adopt", str(weights)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no manifest.json" in r.stderr, r.stderr


@pytest.mark.parametrize("files, needle", [
    (None, "no such folder"),
    ({"manifest.json": "{not json"}, "manifest.json: unreadable"),
    ({"manifest.json": "[1, 2]"}, "not a GPU plan's manifest"),
    ({"manifest.json": '{"runs": [1]}'}, "not a GPU plan's manifest"),
    ({"manifest.json": '{"runs": {}}'}, "lists no runs"),
    ({"manifest.json": '{"runs": {"celeba64-dcgan": {}}}', "results.tar.gz.partX": "x"}, "no numbered part"),
    ({"manifest.json": '{"runs": {"celeba64-dcgan": {}}}', "results.tar.gz": "not a tarball"},
     "results.tar.gz is damaged"),
])
def test_adopt_refuses_a_folder_that_is_no_gpu_plans_results_in_one_line(tmp_path, monkeypatch, files, needle):
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path / "weights"))
    folder = tmp_path / "results"
    if files is not None:
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
    with pytest.raises(gpu_plan.AdoptError, match=needle):
        gpu_plan.adopt(folder, out=lambda s: None)
    assert not (tmp_path / "weights").exists()


def test_without_the_inception_file_it_still_trains_exports_and_packs(tmp_path, rehearsal_data):
    out = tmp_path / "out"
    r = run_script("--rehearse", rehearsal_data, out, timeout=300,
                   env={"GPU_PLAN_WORK": str(tmp_path / "work"), "GPU_PLAN_INCEPTION": str(tmp_path / "none.pt")})
    assert r.returncode == 1
    # the bench runs last with the time left: on a busy CPU it is skipped, and says so (never silently)
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:") and "bench failed: RuntimeError: skipped"
              not in x]
    assert len(errors) == 1 and "missing Inception file" in errors[0] and "on the CPU" in errors[0], r.stderr
    m = check_limits(out)
    assert "afterwards on the CPU" in m["fid_note"] and errors[0][len("error: "):] in m["problems"]
    assert all(p == errors[0][len("error: "):] or p.startswith("bench failed: RuntimeError: skipped")
               for p in m["problems"]), m["problems"]
    for model in gpu_plan.plan_models():
        g = load_generator(str(out / f"{model}.safetensors"), device="cpu")
        if g.entry.is_text:
            assert m["runs"][model]["snapshot"] == "best" and "js_4gram" in g.metrics
        else:       # no metric to choose by: the latest snapshot, with its directions, and no FID
            assert m["runs"][model]["snapshot"].startswith("latest") and "fid" not in g.metrics
            assert g.directions is not None


def test_staging_packs_the_weights_by_priority_under_each_calls_limit(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("stage", ROOT / "scripts" / "stage_device_data.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    sizes = {"a": 15, "b": 9, "c": 7, "d": 2}                        # MiB, in priority order
    files = []
    for name, mib in sizes.items():
        (tmp_path / f"{name}.safetensors").write_bytes(b"\0" * (mib * MIB))
        files.append(tmp_path / f"{name}.safetensors")
    taken, rest = stage.pack(files, 17 * MIB)          # a (15) fits, b (9) not, c (7) not, d (2) fills the room
    assert [p.stem for p in taken] == ["a", "d"] and [p.stem for p in rest] == ["b", "c"]
    assert stage.pack(files, MIB) == ([], files)
    # the plan's own models travel first: they are what its runs warm-start from
    order = [p.stem for p in stage.weight_files()]
    plan = [m for m in gpu_plan.plan_models() if m in order]
    assert order[:len(plan)] == plan and "mnist-classifier" not in order
