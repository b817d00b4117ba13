"""`python -m training campaign`: plan checks, resuming after a kill (bit-exact), warm start when the run folder
vanished, keeping the best snapshot, --status, and export only when it beats what is shipped."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gan_demo.checkpoint import read_checkpoint
from gan_demo.loss_history import read_loss_history
from gan_demo.registry import REGISTRY
from training.campaign import PlanError, format_status, load_plan, read_state
from training.cli import main

ROOT = Path(__file__).resolve().parent.parent


def write_plan(tmp_path, runs="", campaign="", name="plan.toml"):
    p = tmp_path / name
    p.write_text(f'[campaign]\nname = "t"\nruns_dir = "{tmp_path / "runs"}"\n{campaign}\n{runs}')
    return p


@pytest.fixture
def worker_signals():
    """run_worker installs its own SIGTERM/SIGINT handlers (in a worker process they stop training cleanly at the
    end of a step): pytest's come back after a test that runs it in this process."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, h in handlers.items():
        signal.signal(sig, h)


TOY_RUN = """
[[run]]
model = "mnist-gan"
steps = 40
eval_every = 40
eval_samples = 200
export_samples = 500
save_every = 10
log_every = 10
sample_every = 10
arch = {g_hidden = [32, 64, 128], d_hidden = [128, 64, 32]}
"""


@pytest.mark.parametrize("body, needle", [
    ('[[run]]\nmodel = "no-such-model"\n', "unknown model 'no-such-model'"),
    ('[[run]]\nmodel = "mnist-gan"\nhours = -1\n', "'hours' must be a positive number"),
    ('[[run]]\nmodel = "mnist-gan"\nsteps = 0\n', "'steps' must be a positive number"),
    ('[[run]]\nmodel = "mnist-gan"\nstesp = 10\n', "unknown key 'stesp'"),
    ('[[run]]\nmodel = "mnist-gan"\narch = {ngf = 8}\n', "'ngf' is not an architecture setting"),
    ('[[run]]\nmodel = "mnist-dcgan"\narch = {z_dim = 64}\n', "'z_dim' is not an architecture setting a plan may"),
    ('[[run]]\nmodel = "mnist-gan"\narch = {g_hidden = [64, 128]}\n', "changes the shape of mnist-gan's network"),
    ('[[run]]\nmodel = "mnist-dcgan"\narch = {d_norm = "layer"}\n', "d_norm='layer' must be one of batch, none, spectral"),
    ('[[run]]\nmodel = "mnist-dcgan"\narch = {latent_code = 101}\n', "latent_code=101 reads more entries than z"),
    ('[[run]]\nmodel = "mnist-gan"\narch = {d_dropout = 1.5}\n', "d_dropout=1.5 must be a probability from 0"),
    ('[[run]]\nmodel = "mnist-gan"\narch = {d_dropout = "some"}\n', "arch.d_dropout = 'some' changes the shape"),
    ('[[run]]\nmodel = "mnist-dcgan"\narch = {ngf = 5000}\n', "ngf=5000 is out of bounds"),
    ('[[run]]\nmodel = "text-wgangp"\narch = {latent_code = 4}\n', "'latent_code' is not an architecture setting"),
    ('[[run]]\nmodel = "mnist-gan"\ndiffaug = "rotate"\n', "unknown DiffAugment policy 'rotate'"),
    ('[[run]]\nmodel = "mnist-gan"\nsteps = 100\nlr_decay_from = 100\n', "lr_decay_from must be a whole step from 0 to"),
    ('[[run]]\nmodel = "mnist-gan"\nlr_decay_from = -5\n', "lr_decay_from must be a whole step"),
    ('[[run]]\nmodel = "mnist-gan"\n[[run]]\nmodel = "mnist-gan"\n', "two runs are named 'mnist-gan'"),
    ('[[run]]\nmodel = "mnist-gan"\nsteps = [\n', "not valid TOML"),
    ('', "lists no runs"),
    ('[[run]]\nmodel = "mnist-gan"\ntargets = {sharpness = 1}\n', "unknown target metric 'sharpness'"),
    ('[[run]]\nmodel = "mnist-gan"\ntargets = {classifier_fid = "low"}\n', "targets.classifier_fid must be a number"),
    ('[[run]]\nmodel = "mnist-gan"\ntargets = 10\n', "'targets' must be a table"),
    ('[[run]]\nmodel = "mnist-gan"\nstart_from = "best"\n', "start_from must be one of own, shipped"),
    ('[[run]]\nmodel = "mnist-gan"\nd_warmup = -1\n', "d_warmup must be a whole number of steps"),
    ('[[run]]\nmodel = ["mnist-gan"]\n', "unknown model ['mnist-gan']"),
    ('[[run]]\nsteps = 10\n', "no model (add model ="),
    ('[[run]]\nmodel = "mnist-gan"\nseed = "x"\n', "'seed' must be a whole number, got 'x'"),
    ('[[run]]\nmodel = "mnist-gan"\nbetas = 5\n', "'betas' must be a list of 2 numbers, got 5"),
    ('[[run]]\nmodel = "mnist-gan"\ndiffaug = 5\n', "'diffaug' must be a string, got 5"),
    ('[[run]]\nmodel = "mnist-gan"\nema = "x"\n', "'ema' must be a number, got 'x'"),
    ('[[run]]\nmodel = "mnist-gan"\nema = 1.5\n', "'ema' must be from 0 up to (not including) 1"),
    ('[[run]]\nmodel = "mnist-gan"\nflip = "yes"\n', "'flip' must be true or false, got 'yes'"),
    ('[[run]]\nmodel = "mnist-gan"\nlabel_smoothing = "x"\n', "'label_smoothing' must be a number"),
    ('[[run]]\nmodel = "mnist-gan"\ngp_weight = -1\n', "'gp_weight' must be ≥ 0"),
    ('[[run]]\nmodel = "mnist-wgangp"\ngp_every = 0\n', "'gp_every' must be a positive number"),
    ('[[run]]\nmodel = "mnist-gan"\nr1_gamma = -1\n', "'r1_gamma' must be ≥ 0"),
    ('[[run]]\nmodel = "mnist-wgangp"\nr1_gamma = 1\n', "r1_gamma is for the bce and lsgan losses"),
    ('[[run]]\nmodel = "mnist-gan"\ntop_k = 0\n', "'top_k' must be above 0 and at most 1"),
    ('[[run]]\nmodel = "mnist-gan"\ntop_k_decay = 1.5\n', "'top_k_decay' must be above 0 and at most 1"),
    ('[[run]]\nmodel = "mnist-wgangp"\ngp_every = 2.5\n', "gp_every"),
    ('[[run]]\nmodel = "mnist-gan"\nname = 7\n', "'name' must be a non-empty string, got 7"),
    ('[[run]]\nmodel = "mnist-gan"\nname = "../../escape"\n', "name '../../escape' must be letters, digits"),
    ('[[run]]\nmodel = "mnist-gan"\ndevice = 1\n', "'device' must be a non-empty string"),
    ('[[run]]\nmodel = "cifar10-dcgan"\neval_samples = 1\n', "'eval_samples' must be at least 2"),
    ('[[run]]\nmodel = "mnist-gan"\nexport_samples = 1\n', "'export_samples' must be at least 2"),
    ('[[run]]\nmodel = "mnist-gan"\neval_samples = 2.5\n', "'eval_samples' must be a positive number"),
])
def test_bad_plans_fail_at_once_naming_the_file(tmp_path, capsys, body, needle):
    plan = write_plan(tmp_path, body)
    assert main(["campaign", str(plan)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(plan) in err[0] and needle in err[0], err
    assert not (tmp_path / "runs").exists()           # nothing started


@pytest.mark.parametrize("text, needle", [
    ('campaign = 5\n[[run]]\nmodel = "mnist-gan"\n', "'campaign' must be a table ([campaign])"),
    ('run = [1, 2]\n', "'run' must be a table ([run])"),
    ('run = 3\n', "'run' must be a list of tables ([[run]])"),
    ('defaults = 5\n[[run]]\nmodel = "mnist-gan"\n', "'defaults' must be a table ([defaults])"),
    ('[campaign]\nruns_dir = 5\n[[run]]\nmodel = "mnist-gan"\n', "'runs_dir' must be a non-empty string, got 5"),
    ('[campaign]\ndata = 5\n[[run]]\nmodel = "mnist-gan"\n', "'data' must be a non-empty string, got 5"),
])
def test_plans_with_sections_of_the_wrong_type_fail_in_one_line(tmp_path, capsys, text, needle):
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    assert main(["campaign", str(plan), "--status"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(plan) in err[0] and needle in err[0], err


def test_missing_data_path_and_missing_plan(tmp_path, capsys):
    plan = write_plan(tmp_path, TOY_RUN)
    assert main(["campaign", str(plan), "--data", str(tmp_path / "nope")]) == 2
    assert "data path" in capsys.readouterr().err
    assert main(["campaign", str(tmp_path / "absent.toml")]) == 2
    assert "no such plan file" in capsys.readouterr().err


@pytest.mark.parametrize("hours, needle", [("nan", "expected a finite number"), ("inf", "expected a finite number"),
                                           ("0.005", "--hours 0.005 is under 30 s: too short to start a run")])
def test_a_budget_that_cannot_run_is_refused_at_once(tmp_path, capsys, hours, needle):
    plan = write_plan(tmp_path, TOY_RUN)
    assert main(["campaign", str(plan), "--hours", hours]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_this_machine_lacks_is_refused_before_any_run_starts(tmp_path, capsys):
    plan = write_plan(tmp_path, TOY_RUN + 'device = "cuda"\n')
    assert main(["campaign", str(plan), "--status"]) == 0                  # a GPU plan's status reads anywhere
    capsys.readouterr()
    assert main(["campaign", str(plan)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run 'mnist-gan': device 'cuda' is not available here" in err[0], err
    assert not (tmp_path / "runs").exists()


def test_a_failing_worker_is_reported_with_its_error_and_its_output_file(tmp_path, mnist_root, capsys):
    plan = write_plan(tmp_path, TOY_RUN)
    run_dir = tmp_path / "runs" / "mnist-gan"
    run_dir.mkdir(parents=True)
    (run_dir / "samples").write_text("a file where the run keeps a folder")   # the trainer cannot write its samples
    assert main(["campaign", str(plan), "--data", str(mnist_root.parent)]) == 1
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("mnist-gan: worker failed (exit 1): "))
    assert "Error" in line and f"(all of its output: {run_dir / 'worker.out'})" in line, out
    assert "1 run(s) ended with an error: mnist-gan (see their worker.out)" in out


@pytest.mark.parametrize("plan", sorted((ROOT / "training" / "plans").glob("*.toml")), ids=lambda p: p.name)
def test_the_repositorys_plans_load(plan):
    """Every shipped plan passes the checks a run would meet at start (a typo fails here, not hours into a session)."""
    loaded = load_plan(plan, check_data=False)
    assert loaded.runs and len({s.name for s in loaded.runs}) == len(loaded.runs)


def test_face_runs_need_their_data_before_starting(tmp_path):
    plan = write_plan(tmp_path, '[[run]]\nmodel = "celeba64-dcgan"\n')
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlanError, match="needs the celeba data"):
        load_plan(plan, str(tmp_path / "empty"))


def test_overrides_reach_the_entry(tmp_path):
    plan = load_plan(write_plan(tmp_path, TOY_RUN))
    spec = plan.runs[0]
    assert spec.entry.config.g_hidden == (32, 64, 128) and spec.entry.recipe.steps == 40   # a typed config
    assert spec.eval_every == 40 and spec.save_every == 10


def test_threads_on_the_command_line_reach_every_run_and_its_worker(tmp_path, monkeypatch):
    from training.campaign import runner
    path = write_plan(tmp_path, TOY_RUN + '[[run]]\nname = "b"\nmodel = "mnist-gan"\nthreads = 3\n', "threads = 2")
    assert [s.threads for s in load_plan(path).runs] == [2, 3]              # the plan's, without the option
    plan = load_plan(path, threads=1)
    assert [s.threads for s in plan.runs] == [1, 1]
    started = {}
    monkeypatch.setattr(runner.subprocess, "Popen", lambda cmd, **kw: started.update(cmd=cmd, env=kw["env"]))
    runner._spawn(plan, plan.runs[1], None)
    cmd = started["cmd"]
    assert cmd[cmd.index("--threads") + 1] == "1" and started["env"]["OMP_NUM_THREADS"] == "1"   # the worker re-reads it


def _campaign(plan, data, *extra):
    return subprocess.Popen([sys.executable, "-m", "training", "campaign", str(plan), "--data", str(data), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _wait_step(run_dir, step, timeout=900):
    t0 = time.time()
    while time.time() - t0 < timeout:
        log = run_dir / "log.jsonl"
        if log.is_file() and any(json.loads(l)["step"] >= step for l in log.read_text().splitlines() if l.strip()):
            return
        time.sleep(0.2)
    raise TimeoutError(f"no step {step} in {run_dir}")


def test_kill_and_rerun_equals_one_uninterrupted_run(tmp_path, mnist_root, capsys):
    data = mnist_root.parent
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = write_plan(tmp_path / "a", TOY_RUN), write_plan(tmp_path / "b", TOY_RUN)
    # a: one go
    out = _campaign(a, data).communicate(timeout=600)[0]
    run_a = tmp_path / "a" / "runs" / "mnist-gan"
    assert read_state(run_a)["finished_at"] == 40, out
    # b: killed after step 20, then run again
    p = _campaign(b, data)
    run_b = tmp_path / "b" / "runs" / "mnist-gan"
    _wait_step(run_b, 20)
    p.send_signal(signal.SIGTERM)
    out = p.communicate(timeout=240)[0]
    assert p.returncode == 130 and "interrupted" in out
    assert not read_state(run_b).get("finished_at")
    out = _campaign(b, data).communicate(timeout=600)[0]
    sa, sb = read_state(run_a), read_state(run_b)
    assert sb["finished_at"] == 40, out
    assert [e["step"] for e in sa["evaluations"]] == [e["step"] for e in sb["evaluations"]] == [40]
    assert [e["score"] for e in sa["evaluations"]] == [e["score"] for e in sb["evaluations"]]
    ta, tb = load_file(run_a / "best.safetensors"), load_file(run_b / "best.safetensors")
    assert all((ta[k] == tb[k]).all() for k in ta)
    # a third run skips the finished run
    out = _campaign(b, data).communicate(timeout=120)[0]
    assert "finished earlier, skipped" in out
    table = format_status(load_plan(b))
    assert "40/40" in table and "finished" in table and "classifier_fid" in table

    # the run folder vanishes: the next campaign warm-starts from the shipped checkpoint this plan run made
    weights = tmp_path / "weights"
    weights.mkdir()
    env_before = os.environ.get("GAN_DEMO_WEIGHTS_DIR")
    os.environ["GAN_DEMO_WEIGHTS_DIR"] = str(weights)
    try:
        assert main(["campaign", str(b), "--data", str(data), "--export"]) == 0
        shipped = weights / "mnist-gan.safetensors"
        assert shipped.is_file() and (weights / "mnist-gan.md").is_file()
        assert (weights / "mnist-gan-samples.png").is_file()          # the README's grids stay untouched
        history = read_loss_history(weights / "mnist-gan-losses.json")  # the killed run's log, once per step
        assert history.step == [10, 20, 30, 40] and (weights / "mnist-gan-losses.png").is_file()
        card = (weights / "mnist-gan.md").read_text()
        assert "confidently classified" in card
        assert not list(run_b.glob("export-candidate*"))             # the staged file is what shipped
        # the run's discriminator ships beside it (fp16), for a warm start that finds no run folder
        kept = load_file(weights / "discriminators" / "mnist-gan.safetensors")
        trained = torch.load(run_b / "resume.pt", weights_only=True)["D"]
        assert kept.keys() == trained.keys()
        assert all(torch.allclose(kept[k].float(), trained[k], rtol=1e-3, atol=1e-4) for k in kept)
        # exporting again does not replace it with something no better
        before = shipped.read_bytes()
        capsys.readouterr()
        assert main(["campaign", str(b), "--data", str(data), "--export"]) == 0
        assert "mnist-gan: not exported:" in capsys.readouterr().out and shipped.read_bytes() == before
        import shutil
        shutil.rmtree(tmp_path / "b" / "runs")
        plan_text = b.read_text().replace("steps = 40", "steps = 60")
        b.write_text(plan_text)
        out = _campaign(b, data).communicate(timeout=600)[0]
        state = read_state(run_b)
        assert "warm_start" in state and "shipped checkpoint" in state["warm_start"], out
        assert "at step 40 with the discriminator kept beside the shipped checkpoint (saved at step 40)" in \
            state["warm_start"], state["warm_start"]
        assert [e["step"] for e in state["evaluations"]] == [60]
        log = (run_b / "campaign.log").read_text()
        assert "warm-starting" in log
    finally:
        if env_before is None:
            os.environ.pop("GAN_DEMO_WEIGHTS_DIR", None)
        else:
            os.environ["GAN_DEMO_WEIGHTS_DIR"] = env_before


def test_start_from_shipped_continues_a_checkpoint_another_plan_made_with_a_warmed_up_discriminator(
        tmp_path, mnist_root, monkeypatch):
    """A model shipped by another plan (the GPU's) is no run's own progress: a new run starts from step 0, unless
    it says start_from = "shipped"; then it continues that generator, its fresh D trained alone first."""
    from training.data import load_dataset
    from training.loop import Trainer
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(weights))
    entry = load_plan(write_plan(tmp_path, TOY_RUN)).runs[0].entry
    t = Trainer(entry, load_dataset("mnist", mnist_root.parent), tmp_path / "other", steps=10, batch=16,
                device="cpu", log_every=5, sample_every=10, progress=False)
    (weights / "mnist-gan.safetensors").write_bytes(t.train().read_bytes())

    own = write_plan(tmp_path, TOY_RUN.replace("steps = 40", "steps = 20"), name="own.toml")
    out = _campaign(own, mnist_root.parent).communicate(timeout=600)[0]
    run = tmp_path / "runs" / "mnist-gan"
    assert "warm_start" not in read_state(run) and "starting from step 0" in (run / "campaign.log").read_text(), out

    import shutil
    shutil.rmtree(tmp_path / "runs")
    shipped = write_plan(tmp_path, TOY_RUN.replace("steps = 40", 'steps = 20\nstart_from = "shipped"\nd_warmup = 5'),
                         name="shipped.toml")
    out = _campaign(shipped, mnist_root.parent).communicate(timeout=600)[0]
    state = read_state(run)
    assert state["warm_start"].startswith("from the shipped checkpoint at step 10 with a fresh discriminator, "
                                          "trained alone for 5 steps first"), out
    assert state["finished_at"] == 20 and [e["step"] for e in state["evaluations"]] == [20]
    assert "the fresh discriminator trained alone for 5 of 5 steps" in (run / "campaign.log").read_text()


def test_a_stopped_warm_up_goes_on_where_it_stopped_before_the_generator_trains(tmp_path, mnist_root, monkeypatch,
                                                                                  worker_signals):
    """On the CPU a fresh D's warm-up takes an hour: it is saved as it goes, and a run stopped in the middle of it
    does the rest first when it goes on (it used to go straight on with a half-warmed D)."""
    from training import campaign
    from training.data import load_dataset
    from training.loop import Trainer
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(weights))
    monkeypatch.setattr(campaign.worker, "WARMUP_SAVE_EVERY", 2)
    plan = load_plan(write_plan(tmp_path, TOY_RUN.replace("steps = 40", 'steps = 20\nstart_from = "shipped"\n'
                                                                         'd_warmup = 7')))
    spec = plan.runs[0]
    t = Trainer(spec.entry, load_dataset("mnist", mnist_root.parent), tmp_path / "other", steps=10, batch=16,
                device="cpu", log_every=5, sample_every=10, progress=False)
    (weights / "mnist-gan.safetensors").write_bytes(t.train().read_bytes())

    d_steps, step = [], Trainer._discriminator_step

    def counted(self, d_step, **kw):            # the stop comes after the warm-up's fifth step
        d_steps.append(self.step)
        if len(d_steps) == 5 and self.step == 10:
            self.stop_event.set()
        return step(self, d_step, **kw)
    monkeypatch.setattr(Trainer, "_discriminator_step", counted)
    campaign.run_worker(plan, spec, None)
    run = plan.run_dir(spec)
    log = (run / "campaign.log").read_text()
    assert d_steps == [10] * 5 and read_state(run)["d_warmup_left"] == 2, log
    assert "alone: 2 of 7 steps" in log and "alone: 4 of 7 steps" in log
    assert re.search(r"alone: 2 of 7 steps \(\d+ s; D loss \d+\.\d{3}\)", log), log   # has D learned?
    assert "trained alone for 5 of 7 steps" in log and "the rest comes first" in log
    row = format_status(plan).splitlines()[-1]      # the warm start's step, not 0, and the warm-up's progress
    assert "10/20" in row and "stopped (run again to continue; fresh D alone: 5/7 steps)" in row, row
    # the plan's warm-up changed meanwhile: the one begun goes on as it was started, and says so
    plan = load_plan(write_plan(tmp_path, TOY_RUN.replace("steps = 40", 'steps = 20\nstart_from = "shipped"\n'
                                                                         'd_warmup = 3')))
    spec = plan.runs[0]
    assert "fresh D alone: 5/7 steps" in format_status(plan).splitlines()[-1]
    d_steps.clear()
    campaign.run_worker(plan, spec, None)
    log = (run / "campaign.log").read_text()
    assert d_steps[:4] == [10, 10, 10, 11], d_steps     # the 2 left, then D's steps of G's steps 10, 11, ...
    assert "trained alone for 7 of 7 steps" in log and read_state(run)["d_warmup_left"] == 0
    assert read_state(run)["finished_at"] == 20


def test_a_run_continuing_the_shipped_generator_keeps_its_discriminator_when_it_does_not_ship(
        tmp_path, mnist_root, monkeypatch, worker_signals):
    """A run folder lost between sessions costs a fresh D and its warm-up (celeba64-dcgan: 500 steps, 16-108 min of a
    core) every time, unless the export keeps the run's D even when its generator does not beat the shipped one. Only
    once the warm-up is done, and only beside the generator the run started from."""
    from training import campaign
    from training.data import load_dataset
    from training.export import discriminator_file, read_discriminator
    from training.loop import Trainer
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(weights))
    plan = load_plan(write_plan(tmp_path, TOY_RUN.replace("steps = 40", 'steps = 20\nstart_from = "shipped"\n'
                                                                         'd_warmup = 4')))
    spec = plan.runs[0]
    t = Trainer(spec.entry, load_dataset("mnist", mnist_root.parent), tmp_path / "other", steps=10, batch=16,
                device="cpu", log_every=5, sample_every=10, progress=False)
    shipped = weights / "mnist-gan.safetensors"
    shipped.write_bytes(t.train().read_bytes())
    stop_after = {"n": 2}                       # the first run stops inside the warm-up

    def stopping(self, d_step, step=Trainer._discriminator_step, **kw):
        stop_after["n"] -= 1
        if stop_after["n"] == 0:
            self.stop_event.set()
        return step(self, d_step, **kw)
    monkeypatch.setattr(Trainer, "_discriminator_step", stopping)
    said = []
    campaign.run_worker(plan, spec, None)
    run = plan.run_dir(spec)
    assert read_state(run)["d_warmup_left"] == 2
    assert campaign.keep_discriminator(plan, spec, said.append) is None      # a half-warmed D is not kept
    assert not discriminator_file("mnist-gan").exists()
    stop_after["n"] = -1
    campaign.run_worker(plan, spec, None)
    assert read_state(run)["finished_at"] == 20
    from training.export import update_metrics
    # (a shipped card with the memorisation check: the candidate is checked too, so the cards compare)
    update_metrics(str(shipped), {"classifier_fid": 5.0, "confidently_classified": 0.9, "memorisation_ratio": 1.1})
    import training.metrics.evaluate as ev
    asked = {}
    monkeypatch.setattr(ev, "evaluate", lambda *a, **k: asked.update(k) or {"classifier_fid": 1e9,
                                                                             "confidently_classified": 0.0})
    campaign.export_best(plan, spec, out=said.append)
    assert asked["memorisation"] is True
    assert any("not exported" in line for line in said), said
    assert "mnist-gan: measured classifier_fid 1e+09, confidently_classified 0" in said, said
    assert any("kept its discriminator" in line for line in said), said
    kept, step = read_discriminator(discriminator_file("mnist-gan"))
    trained = torch.load(run / "resume.pt", weights_only=True)["D"]
    assert step == 20 and all(torch.allclose(kept[k], trained[k].float(), rtol=1e-3, atol=1e-4) for k in kept)
    # another generator shipped since: this run's D was trained against a different one, and is not kept over it
    discriminator_file("mnist-gan").unlink()
    t2 = Trainer(spec.entry, load_dataset("mnist", mnist_root.parent), tmp_path / "third", steps=12, batch=16,
                 device="cpu", log_every=6, sample_every=12, progress=False)
    shipped.write_bytes(t2.train().read_bytes())
    assert campaign.keep_discriminator(plan, spec, said.append) is None
    assert not discriminator_file("mnist-gan").exists()


def test_the_export_ships_the_discriminator_of_the_best_step_and_a_warm_start_takes_it_back(
        tmp_path, mnist_root, monkeypatch, capsys, worker_signals):
    """The best snapshot is often not the last one (GAN quality falls late); its D is kept with it, so the export
    ships G and D of one step (cifar10-dcgan shipped G of 20,000 beside the D of 22,177, which had won by then)."""
    from training import campaign
    import training.campaign.worker as worker
    import training.metrics.evaluate as ev
    from training.export import discriminator_file, read_discriminator
    weights = tmp_path / "weights"
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(weights))
    plan = load_plan(write_plan(tmp_path, TOY_RUN.replace("steps = 40", "steps = 30").replace(
        "eval_every = 40", "eval_every = 10")))
    spec = plan.runs[0]
    scores = iter([30.0, 20.0, 25.0])                     # the best at step 20 of 30
    monkeypatch.setattr(worker, "quick_eval", lambda *a, **k: {"classifier_fid": next(scores),
                                                                "confidently_classified": 0.5})
    campaign.run_worker(plan, spec, None)
    run = plan.run_dir(spec)
    assert read_state(run)["best"]["step"] == 20 and read_state(run)["finished_at"] == 30
    monkeypatch.setattr(ev, "evaluate", lambda *a, **k: {"classifier_fid": 20.0, "confidently_classified": 0.5})
    said = []
    assert campaign.export_best(plan, spec, out=said.append) == weights / "mnist-gan.safetensors", said
    kept, step = read_discriminator(discriminator_file("mnist-gan"))
    best_d, _ = read_discriminator(run / campaign.BEST_D_FILE)
    latest = torch.load(run / "resume.pt", weights_only=True)["D"]
    assert step == 20 and all(torch.equal(kept[k], best_d[k]) for k in kept)
    assert not all(torch.allclose(kept[k], latest[k].float(), rtol=1e-3, atol=1e-4) for k in kept)
    # --latest: the step-30 snapshot, when the larger measurement prefers it (cifar10-dcgan-wide's 13,000 to
    # the cheap metric's 7,000), ships with the discriminator of its own step and says so in its record
    monkeypatch.setattr(ev, "evaluate", lambda *a, **k: {"classifier_fid": 15.0, "confidently_classified": 0.5})
    assert campaign.export_best(plan, spec, out=said.append, latest=True) == weights / "mnist-gan.safetensors"
    training = read_checkpoint(weights / "mnist-gan.safetensors")[2]["training"]
    assert training["steps"] == 30 and training["campaign"]["latest_step"] == 30, training
    assert training["campaign"]["score"] == 25.0 and "best_step" not in training["campaign"]
    kept, step = read_discriminator(discriminator_file("mnist-gan"))
    assert step == 30 and all(torch.allclose(kept[k], latest[k].float(), rtol=1e-3, atol=1e-4) for k in kept)
    assert not (run / "latest-snapshot.safetensors").exists() and (run / campaign.BEST_FILE).is_file()
    assert not any("note:" in line for line in said), said        # G and D of one step: nothing to say
    # a generator snapshot older than the resume file (a run killed between saves): the export says so
    (run / "generator.safetensors").write_bytes((run / campaign.BEST_FILE).read_bytes())
    assert campaign.export_best(plan, spec, out=said.append, latest=True, force=True)
    assert any("resume file's, of step 30 (the generator's: 20)" in line for line in said), said
    # an unreadable latest snapshot: one line naming the file, not "nothing to export" and not a stack trace
    (run / "generator.safetensors").write_bytes(b"not a checkpoint")
    assert main(["campaign", str(plan.path), "--data", str(mnist_root.parent), "--export", "--latest"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "generator.safetensors" in err[0], err
    # the resume file lost: the run warm-starts from its best snapshot with that snapshot's D
    (run / "resume.pt").unlink()
    plan = load_plan(write_plan(tmp_path, TOY_RUN.replace("eval_every = 40", "eval_every = 10")))
    scores = iter([22.0, 19.0])                       # 30 again: the step-30 generator measured before is gone
    campaign.run_worker(plan, plan.runs[0], None)
    state = read_state(run)
    assert state["warm_start"].startswith("from the run's best snapshot at step 20 with its discriminator of that "
                                          "step"), state["warm_start"]
    assert state["finished_at"] == 40 and [e["step"] for e in state["evaluations"]] == [10, 20, 30, 40]
    assert state["best"]["step"] == 40


def test_a_parked_run_whose_folder_is_lost_resumes_from_its_parked_snapshot_and_record(
        tmp_path, mnist_root, monkeypatch, capsys, worker_signals):
    """Run folders live in an ignored folder a replaced machine loses; `--park` keeps an unfinished run's best
    snapshot, its D and its evaluations beside the plan, and the run resumes from them instead of step 0."""
    from training import campaign
    import training.campaign.worker as worker
    from training.export import read_discriminator
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path / "weights"))     # nothing shipped
    short = write_plan(tmp_path, TOY_RUN.replace("steps = 40", "steps = 20").replace("eval_every = 40",
                                                                                       "eval_every = 10"))
    plan = load_plan(short)
    spec, run = plan.runs[0], plan.run_dir(plan.runs[0])
    assert main(["campaign", str(short), "--park"]) == 0
    assert "nothing parked: no unfinished run has an evaluated snapshot" in capsys.readouterr().out
    assert main(["campaign", str(short), "--park", "--export"]) == 2
    assert "--park goes alone" in capsys.readouterr().err
    scores = iter([30.0, 20.0])
    monkeypatch.setattr(worker, "quick_eval", lambda *a, **k: {"classifier_fid": next(scores),
                                                                "confidently_classified": 0.5})
    campaign.run_worker(plan, spec, None)
    assert main(["campaign", str(short), "--park"]) == 0
    assert "finished: nothing to park" in capsys.readouterr().out
    longer = write_plan(tmp_path, TOY_RUN.replace("eval_every = 40", "eval_every = 10"))   # 40 steps: reopened
    assert main(["campaign", str(longer), "--park"]) == 0
    parked = tmp_path / "parked" / "t" / spec.name                 # beside the plan, under its name
    assert "parked the best snapshot (step 20" in capsys.readouterr().out
    g_best, g_parked = read_checkpoint(run / campaign.BEST_FILE), read_checkpoint(parked / campaign.BEST_FILE)
    assert all(v.dtype == torch.float16 for v in load_file(parked / campaign.BEST_FILE).values()
               if v.is_floating_point())
    assert all(torch.allclose(g_best[1][k], g_parked[1][k], rtol=1e-2, atol=1e-3) for k in g_best[1])
    assert read_discriminator(parked / campaign.BEST_D_FILE)[1] == 20
    shutil.rmtree(run)                                                # the machine was replaced
    plan = load_plan(longer)
    assert "parked at step 20 (run again to resume from it)" in format_status(plan)
    scores = iter([25.0, 10.0])
    campaign.run_worker(plan, plan.runs[0], None)
    state = read_state(run)
    assert state["warm_start"].startswith("from the run's best snapshot at step 20 with its discriminator of that "
                                          "step"), state["warm_start"]
    assert "restored from its parked copy" in state["warm_start"]
    assert [e["step"] for e in state["evaluations"]] == [10, 20, 30, 40]     # the record came back with it
    assert state["best"]["step"] == 40 and state["finished_at"] == 40
    # shipped since it was parked: the shipped checkpoint (step 40) is newer than the parked copy (20), so a lost
    # folder warm-starts from that instead
    import training.metrics.evaluate as ev
    monkeypatch.setattr(ev, "evaluate", lambda *a, **k: {"classifier_fid": 10.0, "confidently_classified": 0.5})
    assert campaign.export_best(plan, plan.runs[0], out=lambda *_: None)
    shutil.rmtree(run)
    assert campaign.unpark_run(plan, plan.runs[0]) is None and not run.exists()
    row = format_status(plan).splitlines()[-1]          # the shipped file says how far the lost run had come
    assert "40/40" in row and "finished: shipped at step 40; its folder is not here" in row, row
    longer = load_plan(write_plan(tmp_path, TOY_RUN.replace("steps = 40", "steps = 60")))
    assert "shipped at step 40; its folder is not here (run again to continue" in format_status(longer)


def test_a_parked_copy_that_cannot_be_used_is_reported_and_a_finished_run_drops_its_copy(
        tmp_path, mnist_root, monkeypatch, capsys, worker_signals):
    from training import campaign
    import training.campaign.worker as worker
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path / "weights"))     # nothing shipped
    plans = {n: write_plan(tmp_path, TOY_RUN.replace("steps = 40", f"steps = {n}").replace(
        "eval_every = 40", "eval_every = 10"), name=f"p{n}.toml") for n in (20, 40, 60)}
    for p in plans.values():                          # one plan name, so one run folder and one parked copy
        p.write_text(p.read_text().replace('name = "t"', f'name = "t"\nparked_dir = "{tmp_path / "parked"}"'))
    scores = iter(range(100, 0, -1))                  # every evaluation the best so far
    monkeypatch.setattr(worker, "quick_eval", lambda *a, **k: {"classifier_fid": float(next(scores)),
                                                                "confidently_classified": 0.5})
    plan = load_plan(plans[20])
    spec, run, parked = plan.runs[0], plan.run_dir(plan.runs[0]), tmp_path / "parked" / plan.runs[0].name
    campaign.run_worker(plan, spec, None)
    assert main(["campaign", str(plans[40]), "--park"]) == 0 and (parked / campaign.BEST_FILE).is_file()
    # a record that cannot be read costs the evaluations, not the snapshot
    (parked / "campaign.json").write_text("{not json")
    shutil.rmtree(run)
    plan = load_plan(plans[40])
    campaign.run_worker(plan, plan.runs[0], None)
    state = read_state(run)
    assert state["warm_start"].startswith("from the run's best snapshot at step 20"), state["warm_start"]
    assert "evaluations are lost" in state["warm_start"] and [e["step"] for e in state["evaluations"]] == [30, 40]
    # finished: nothing to park, and the older copy goes, so that a lost folder does not train from step 20 again
    capsys.readouterr()
    assert main(["campaign", str(plans[40]), "--park"]) == 0
    assert "finished: nothing to park (its older parked copy" in capsys.readouterr().out and not parked.exists()
    # an unreadable parked generator: said in the status and the log, and the run starts again from step 0
    assert main(["campaign", str(plans[60]), "--park"]) == 0 and (parked / campaign.BEST_FILE).is_file()
    (parked / campaign.BEST_FILE).write_bytes(b"not a checkpoint")
    shutil.rmtree(run)
    plan = load_plan(plans[60])
    assert "not started: its parked copy is unreadable" in format_status(plan)
    plan = load_plan(plans[20])                       # the same run, 20 steps: enough to see where it starts
    campaign.run_worker(plan, plan.runs[0], None)
    log = (run / "campaign.log").read_text()
    assert "its parked copy is unreadable" in log and "starting from step 0" in log, log
    assert [e["step"] for e in read_state(run)["evaluations"]] == [10, 20]


def test_a_warm_start_loads_the_kept_discriminator_only_when_it_fits(tmp_path, mnist_root, monkeypatch):
    from training.campaign.worker import _load_kept_discriminator
    from training.data import load_dataset
    from training.export import discriminator_file, ship_discriminator
    from training.loop import Trainer
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path / "weights"))
    data = load_dataset("mnist", mnist_root.parent)
    t = Trainer(REGISTRY["mnist-dcgan"], data, tmp_path / "run", steps=2, batch=8, device="cpu", progress=False)
    assert _load_kept_discriminator(t, "mnist-dcgan") == (None, "")            # none kept: a fresh D, silently
    t.train()
    assert ship_discriminator(tmp_path / "run", "mnist-dcgan") == discriminator_file("mnist-dcgan")
    fresh = Trainer(REGISTRY["mnist-dcgan"], data, tmp_path / "new", device="cpu", seed=1, progress=False)
    assert _load_kept_discriminator(fresh, "mnist-dcgan") == (2, "")
    assert all(torch.allclose(v.float(), t.D.state_dict()[k].float(), rtol=1e-3, atol=1e-4)
               for k, v in fresh.D.state_dict().items())
    narrow = REGISTRY["mnist-dcgan"].with_config(ndf=16)                       # another width: it does not fit
    other = Trainer(narrow, data, tmp_path / "narrow", device="cpu", progress=False)
    before = {k: v.clone() for k, v in other.D.state_dict().items()}
    step, why = _load_kept_discriminator(other, "mnist-dcgan")
    assert step is None and "the kept one is unusable" in why and "do not match the architecture" in why
    assert all(torch.equal(v, other.D.state_dict()[k]) for k, v in before.items())
    discriminator_file("mnist-dcgan").write_bytes(b"not a file")             # broken: said, never a crash
    assert "unusable" in _load_kept_discriminator(fresh, "mnist-dcgan")[1]


def test_exporting_a_run_whose_resume_file_is_corrupt_ships_g_and_says_d_is_not_kept(tmp_path, mnist_root,
                                                                                       monkeypatch, capsys):
    from training.data import load_dataset
    from training.export import discriminator_file, ship_discriminator
    from training.loop import Trainer
    from training.runlog import RunFolder
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path / "weights"))
    Trainer(REGISTRY["mnist-dcgan"], load_dataset("mnist", mnist_root.parent), tmp_path / "run", steps=2, batch=8,
            device="cpu", progress=False).train()
    resume = RunFolder(tmp_path / "run").resume_file
    resume.write_bytes(resume.read_bytes()[:1000])                          # cut short, as by a full disk
    assert ship_discriminator(tmp_path / "run", "mnist-dcgan") is None
    err = capsys.readouterr().err
    assert "unreadable" in err and "the discriminator of mnist-dcgan is not kept" in err and len(err.splitlines()) == 1
    assert not discriminator_file("mnist-dcgan").exists()


def test_warming_up_the_discriminator_trains_d_alone(tmp_path, mnist_root):
    from training.data import load_dataset
    from training.loop import Trainer
    t = Trainer(REGISTRY["mnist-wgangp"], load_dataset("mnist", mnist_root.parent), tmp_path / "run", steps=4,
                batch=8, device="cpu", progress=False)
    g, d = ({k: v.detach().clone() for k, v in m.named_parameters()} for m in (t.G, t.D))
    assert t.warm_up_discriminator(3) == 3   # G's batch-norm running statistics move, as in any D step; not its weights
    assert t.step == 0 and all(torch.equal(v, dict(t.G.named_parameters())[k]) for k, v in g.items())
    assert not all(torch.equal(v, dict(t.D.named_parameters())[k]) for k, v in d.items())
    assert all(s["step"] == 3 for s in t.opt_d.state.values()) and not t.opt_g.state


def test_unreadable_resume_file_is_reported_and_warm_started(tmp_path, mnist_root):
    plan = write_plan(tmp_path, TOY_RUN.replace("steps = 40", "steps = 20"))
    out = _campaign(plan, mnist_root.parent).communicate(timeout=600)[0]
    run = tmp_path / "runs" / "mnist-gan"
    assert read_state(run)["finished_at"] == 20, out
    # more steps, and a broken resume file
    plan.write_text(plan.read_text().replace("steps = 20", "steps = 40"))
    (run / "resume.pt").write_bytes(b"garbage")
    out = _campaign(plan, mnist_root.parent).communicate(timeout=600)[0]
    log = (run / "campaign.log").read_text()
    assert "resume file unusable" in log and "warm-starting from the run's best snapshot at step 20" in log, log
    assert read_state(run)["finished_at"] == 40


def test_a_text_run_warm_starts_from_its_snapshot_although_the_data_set_its_vocabulary(tmp_path):
    """The trainer records the data's vocabulary in a text checkpoint; the plan's entry leaves it unset. That
    difference alone must not make the campaign pass over the run's own best snapshot (and restart from step 0)."""
    import torch
    from gan_demo.checkpoint import save_checkpoint
    from gan_demo.models import build_generator
    from training.campaign import BEST_FILE
    from training.campaign.worker import _warm_source
    plan = load_plan(write_plan(tmp_path, '[[run]]\nmodel = "text-wgangp"\narch = {dim = 16}\n'), check_data=False)
    spec = plan.runs[0]
    run_dir = plan.run_dir(spec)
    run_dir.mkdir(parents=True)
    trained = spec.entry.with_config(vocab=tuple("abc .,'"))        # as the Trainer saves it
    torch.manual_seed(0)
    save_checkpoint(run_dir / BEST_FILE, trained, build_generator(trained.arch, trained.config).state_dict())
    assert _warm_source(plan, spec, run_dir) == (run_dir / BEST_FILE, "the run's best snapshot", "")
    wider = spec.entry.with_config(dim=32, vocab=tuple("abc .,'"))               # another architecture: not it
    save_checkpoint(run_dir / BEST_FILE, wider, build_generator(wider.arch, wider.config).state_dict())
    assert _warm_source(plan, spec, run_dir)[0] is None


def test_compare_runs_prints_the_runs_side_by_side_by_step(tmp_path):
    """scripts/compare_runs.py: one row per evaluated step, '–' where a run has no evaluation there."""
    for name, evals in (("a", [(1000, 293.0, 0.4675), (2000, 150.5, 0.618)]), ("b", [(1000, 289.3, 0.5215)])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "campaign.json").write_text(json.dumps({"evaluations": [
            {"step": s, "score": v, "metrics": {"classifier_fid": v, "confidently_classified": c}}
            for s, v, c in evals]}))
    script = [sys.executable, str(ROOT / "scripts" / "compare_runs.py")]
    out = subprocess.run(script + [str(tmp_path / "a"), str(tmp_path / "b")], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.splitlines() == [
        "| step | a | b |", "|---|---|---|", "| 1,000 | 293 / 46.8% | 289.3 / 52.1% |", "| 2,000 | 150.5 / 61.8% | – |"]
    bad = subprocess.run(script + [str(tmp_path / "nope")], capture_output=True, text=True)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1 and "nope" in bad.stderr


def test_a_candidate_ships_only_with_a_measured_headline_that_beats_the_shipped_one():
    from training.campaign import shipped_note, why_not_ship
    entry = REGISTRY["mnist-dcgan"]
    assert why_not_ship(entry, 8.0, 9.0) is None
    assert why_not_ship(entry, 8.0, None) is None                 # nothing shipped yet
    assert "does not beat the shipped 8" in why_not_ship(entry, 8.0, 8.0)
    assert "does not beat" in why_not_ship(entry, 9.5, 8.0)
    assert "measured" in why_not_ship(entry, None, 8.0) and "measured" in why_not_ship(entry, None, None)
    assert shipped_note(entry, 8.0, 9.0).endswith("8, shipped was 9") and "-" in shipped_note(entry, None, None)


def test_meeting_more_of_a_runs_targets_comes_before_the_headline(tmp_path):
    """mnist-dcgan's targets are 95% well-formed digits, classifier-FID ≤ 10 and a class entropy ≥ 0.98·log 10. A
    snapshot that passes 95% at classifier-FID 7.9 is kept and shipped over one at 6.9 that stays at 94.4%."""
    from training.campaign import replaces_best, targets_missed, why_not_ship
    targets = {"confidently_classified": 0.95, "classifier_fid": 10, "class_entropy_ratio": 0.98}

    def rec(fid, share):
        return {"score": fid, "metrics": {"classifier_fid": fid, "classifier_fid_samples": 10000,
                                          "confidently_classified": share, "class_entropy_ratio": 0.999}}
    all_met, short = rec(7.9, 0.9524), rec(6.9, 0.9436)
    assert targets_missed(all_met["metrics"], targets) == 0 and targets_missed(short["metrics"], targets) == 1
    assert targets_missed({}, targets) == 3 and targets_missed(None, {}) == 0     # a metric not measured misses
    assert targets_missed({"classifier_fid": 10.0}, {"classifier_fid": 10}) == 0  # at the target: met
    assert replaces_best(short, all_met, targets) and not replaces_best(all_met, short, targets)
    assert replaces_best(all_met, rec(7.5, 0.951), targets)      # as many met: the lower classifier-FID
    assert replaces_best(all_met, short) is True                  # without targets: the headline alone
    entry = REGISTRY["mnist-dcgan"]
    assert why_not_ship(entry, 7.9, 6.9, (0, 1)) is None
    assert why_not_ship(entry, 6.5, 7.9, (1, 0)) == "it misses 1 of the run's targets, the shipped checkpoint 0"
    assert "does not beat" in why_not_ship(entry, 8.0, 7.9, (0, 0))
    plan = load_plan(write_plan(tmp_path, TOY_RUN + "targets = {confidently_classified = 0.92, classifier_fid = 50}\n"))
    assert plan.runs[0].targets == {"confidently_classified": 0.92, "classifier_fid": 50}
    run_dir = plan.run_dir(plan.runs[0])
    run_dir.mkdir(parents=True)
    (run_dir / "campaign.json").write_text(json.dumps({"headline": "classifier_fid", "best": {
        "step": 40, "score": 41.7, "metrics": {"classifier_fid": 41.7, "confidently_classified": 0.844}}}))
    row = [r for r in format_status(plan).splitlines() if r.startswith("mnist-gan")][0]
    assert "classifier_fid 41.7@40" in row and " 1/2 " in row


def test_the_files_beside_a_checkpoint_are_named_in_one_place(tmp_path):
    from gan_demo.loss_history import history_file
    from gan_demo.paths import beside_files
    files = beside_files(tmp_path, "mnist-gan")
    assert [p.name for p in files] == ["mnist-gan-losses.json", "mnist-gan-losses.png", "mnist-gan-progress.gif"]
    assert history_file(tmp_path, "mnist-gan") == files.loss_history


def test_the_best_snapshot_compares_only_scores_of_the_same_sample_count():
    """Raising a run's eval_samples (2,000 → 10,000 digits) restarts its best: classifier-FID of 10,000 digits
    reads lower than of 2,000, so the two never compare."""
    from training.campaign import replaces_best

    def rec(score, n):
        return {"score": score, "metrics": {"classifier_fid": score, "classifier_fid_samples": n}}
    assert replaces_best(None, rec(13.0, 2000))
    assert replaces_best(rec(13.0, 2000), rec(12.9, 2000))
    assert not replaces_best(rec(12.9, 2000), rec(13.0, 2000))
    assert replaces_best(rec(8.0, 10000), rec(13.0, 2000))        # another count: the new one restarts the best
    assert not replaces_best(rec(8.0, 10000), rec(8.1, 10000))
    assert replaces_best({"score": 0.05, "metrics": {}}, rec(0.06, 500)) is False   # count unknown: compared
    assert replaces_best(rec(8.0, 10000), {"score": None, "metrics": {}})


def test_a_run_is_trained_by_one_process_at_a_time(tmp_path, mnist_root, capsys):
    """A second campaign (another terminal, a cron job) leaves a run that a live worker holds alone, and --status
    says who trains it; the OS releases the lock when the holder ends, however it ends."""
    from training.campaign import lock_run, trained_by
    plan_file = write_plan(tmp_path, TOY_RUN)
    plan = load_plan(plan_file)
    run_dir = plan.run_dir(plan.runs[0])
    run_dir.mkdir(parents=True)
    assert trained_by(run_dir) is None and "stopped (run again to continue)" in format_status(plan)
    held = lock_run(run_dir)
    assert held is not None and trained_by(run_dir) == os.getpid() and lock_run(run_dir) is None
    assert f"training (pid {os.getpid()})" in format_status(plan)
    r = subprocess.run([sys.executable, "-m", "training", "campaign", str(plan_file), "--worker", "mnist-gan",
                        "--data", str(mnist_root.parent)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "another process is training this run" in r.stderr.strip().splitlines()[-1]
    assert main(["campaign", str(plan_file), "--data", str(mnist_root.parent)]) == 0
    assert f"mnist-gan: being trained by another process (pid {os.getpid()}), skipped" in capsys.readouterr().out
    assert not (run_dir / "log.jsonl").exists()              # nothing trained beside the holder
    held.close()
    assert trained_by(run_dir) is None and "stopped (run again to continue)" in format_status(plan)
    # held by a process that is then killed: the OS frees the lock
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from training.campaign import lock_run; f = lock_run(Path(sys.argv[1])); "
                               "print('held', flush=True); time.sleep(600)", str(run_dir)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held" and trained_by(run_dir) == holder.pid
    holder.kill()
    holder.wait(timeout=30)
    assert trained_by(run_dir) is None and lock_run(run_dir) is not None
    # a holder that forked (CelebA's decoder pool) and is then killed: its live child does not keep the lock
    holder = subprocess.Popen([sys.executable, "-c", "import os, sys, time; from pathlib import Path; "
                               "from training.campaign import lock_run; f = lock_run(Path(sys.argv[1])); "
                               "child = os.fork(); child or time.sleep(600); "
                               "print(child, flush=True); time.sleep(600)", str(run_dir)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = int(holder.stdout.readline())
    try:
        assert trained_by(run_dir) == holder.pid
        holder.kill()
        holder.wait(timeout=30)
        os.kill(child, 0)                                    # the child lives on
        assert trained_by(run_dir) is None
    finally:
        os.kill(child, 9)


def test_an_export_is_measured_with_the_shipped_checkpoints_counts(tmp_path):
    """FID, classifier-FID and the n-gram divergences depend on the sample (and reference) counts: a candidate is
    measured as the shipped checkpoint was (a GPU-measured face model: 10,000 samples against all 16,452 faces; the
    GPU's text GAN: 10,000 sentences, whose 0.308 reads 0.326 on 2,000), else with the plan's export_samples."""
    from training.campaign import export_protocol
    plan = load_plan(write_plan(tmp_path, '[[run]]\nmodel = "celeba64-dcgan"\nexport_samples = 5000\n'
                                          '[[run]]\nmodel = "mnist-dcgan"\nexport_samples = 10000\n'
                                          '[[run]]\nmodel = "text-wgangp"\n'))
    faces, digits, text = plan.runs
    gpu = {"fid": 30.9, "fid_samples": 10000, "fid_reference_images": 16452}
    assert export_protocol(faces, gpu) == (10000, 16452)
    assert export_protocol(faces, None) == (5000, None)                         # nothing shipped yet
    assert export_protocol(faces, {"kid": 0.03}) == (5000, None)                # counts not recorded
    assert export_protocol(faces, {"fid_samples": "many", "fid_reference_images": 9}) == (5000, None)
    assert export_protocol(digits, gpu) == (10000, None)                       # the classifier's metrics
    assert export_protocol(digits, {"classifier_fid_samples": 2000}) == (2000, None)
    assert text.export_samples == 2000 and export_protocol(text, None) == (2000, None)
    assert export_protocol(text, {"js_4gram": 0.3081, "text_samples": 10000}) == (10000, None)
    assert export_protocol(text, {"js_4gram": 0.3081}) == (2000, None)


def test_a_conditional_digit_model_keeps_its_best_by_classifier_fid_with_its_accuracy_a_target(tmp_path):
    """Judged by its conditional error alone, a generator that draws one perfect digit per label (error 0,
    classifier-FID 654) beat one drawing real variety (error 0.01, classifier-FID 19). The error is read from the
    accuracy wherever that is there: the full evaluation measures only the accuracy, and shipped cards still hold a
    quick evaluation's error of 2,000 digits beside it (mnist-cdcgan: 0.0085 against 1 − 0.9924)."""
    from training.campaign import headline, headline_value, metric_value, replaces_best, targets_missed
    entry = REGISTRY["mnist-cdcgan"]
    assert headline(entry) == "classifier_fid" == headline(REGISTRY["mnist-cgan"])
    targets = {"conditional_accuracy": 0.99}
    varied = {"score": 19.2, "metrics": {"classifier_fid": 19.2, "conditional_accuracy": 0.991}}
    collapsed = {"score": 654.2, "metrics": {"classifier_fid": 654.2, "conditional_accuracy": 1.0}}
    assert replaces_best(collapsed, varied, targets) and not replaces_best(varied, collapsed, targets)
    card = {"classifier_fid": 7.9, "conditional_accuracy": 0.9924, "conditional_error": 0.0085}
    assert metric_value(card, "conditional_error") == 0.0076 and headline_value(entry, card) == 7.9
    assert targets_missed(card, {"conditional_error": 0.008}) == 0          # the full evaluation has no error key
    assert metric_value({"conditional_error": 0.02}, "conditional_error") == 0.02 and metric_value(None, "x") is None
    # a run saved under the old headline re-scores its best on resume (its evaluations measured classifier-FID)
    plan = load_plan(write_plan(tmp_path, '[[run]]\nmodel = "mnist-cdcgan"\nsteps = 4\neval_every = 2\n'))
    run_dir = plan.run_dir(plan.runs[0])
    run_dir.mkdir(parents=True)
    (run_dir / "campaign.json").write_text(json.dumps({"headline": "conditional_error", "best": {
        "step": 2, "score": 0.0085, "metrics": {"classifier_fid": 12.5, "conditional_error": 0.0085}}}))
    from training.campaign import read_state, rescore_best
    state = read_state(run_dir)
    rescore_best(state, plan.runs[0])
    assert state["headline"] == "classifier_fid" and state["best"]["score"] == 12.5
    assert replaces_best(state["best"], {"score": 11.0, "metrics": {"classifier_fid": 11.0}})


def test_status_counts_only_the_targets_a_runs_evaluations_measure(tmp_path):
    """A CIFAR-10 run's evaluations measure KID; its FID target is judged at export. --status says so, instead of
    counting an unmeasured FID as missed (0/1 however good the run)."""
    plan = load_plan(write_plan(tmp_path, '[[run]]\nmodel = "cifar10-wgangp"\ntargets = {fid = 40}\n'))
    run_dir = plan.run_dir(plan.runs[0])
    run_dir.mkdir(parents=True)
    (run_dir / "campaign.json").write_text(json.dumps({"headline": "kid", "best": {
        "step": 1000, "score": 0.0549, "metrics": {"kid": 0.0549, "kid_samples": 500}}}))
    row = [r for r in format_status(plan).splitlines() if r.startswith("cifar10-wgangp")][0]
    assert "kid 0.0549@1000" in row and " - " in row and row.endswith("; target fid: at export")
    assert " 0/1 " not in row


def test_status_time_left_follows_the_logged_rate_whatever_the_critic_steps(tmp_path):
    """img_per_s in the log is the generator's images a second (batch × steps a second), five critic steps or one:
    10,000 steps left at batch 64 and 32 images a second are 20,000 s."""
    from training.campaign import status_rows
    plan = load_plan(write_plan(tmp_path, '[[run]]\nmodel = "mnist-wgangp"\nsteps = 12000\n'))
    run_dir = plan.run_dir(plan.runs[0])
    run_dir.mkdir(parents=True)
    (run_dir / "log.jsonl").write_text(json.dumps({"step": 2000, "img_per_s": 32.0, "d_loss": 0, "g_loss": 0}) + "\n")
    row = status_rows(plan)[0]
    assert plan.runs[0].entry.recipe.n_critic == 5 and row["time_left_s"] == 20000
