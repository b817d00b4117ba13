"""`python -m training push RUN_DIR_OR_NAME --repo owner/name [--dry-run]`: a checkpoint and its model card to the Hub.

What goes up is staged in a temporary folder first, so `--dry-run` shows exactly the files an upload would send:

    <model>.safetensors   the shipped format: a run folder is exported (fp16, latent directions) like
                          `python -m training export`; a weights file or registry name is copied as it is
    <model>.md            the plain model card, as beside weights/ files (a repository can hold several models:
                          `load_generator("owner/name:<model>")`, or GAN_DEMO_HUB_REPO for the app)
    README.md             the Hub's model card: the same text under YAML metadata (library, tags, licence,
                          datasets, metrics and their values as model-index results). In a repository that
                          holds several models it describes the last one pushed; each keeps its <model>.md.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gan_demo.checkpoint import read_checkpoint
from gan_demo.generator import resolve_weights
from gan_demo.model_card import model_card
from gan_demo.models import count_parameters
from gan_demo.registry import ModelEntry

LIBRARY = "gan_demo"
# Hub licence ids (https://hf.co/docs/hub/repositories-licenses) and datasets, by registry dataset: Hub dataset ids
# where a canonical one exists (MNIST, CIFAR-10), else the dataset's usual name
HUB_LICENSE = {
    "mnist": {"license": "cc-by-sa-3.0"},
    "cifar10": {"license": "other", "license_name": "cifar-10",
                "license_link": "https://www.cs.toronto.edu/~kriz/cifar.html"},
    "celeba": {"license": "other", "license_name": "celeba-non-commercial-research",
               "license_link": "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"},
    "text": {"license": "cc0-1.0"},
}
HUB_DATASET = {"mnist": ("ylecun/mnist", "MNIST"), "cifar10": ("uoft-cs/cifar10", "CIFAR-10"),
               "celeba": ("celeba", "CelebA"), "text": ("common_voice", "Common Voice English sentences")}


class PushError(Exception):
    pass


@dataclass
class Staged:
    entry: ModelEntry
    folder: Path
    files: list[Path]           # in upload order: checkpoint, its card, README.md


def _dataset_key(entry: ModelEntry) -> str:
    return "celeba" if entry.dataset.startswith("celeba") else entry.dataset


def _task(entry: ModelEntry) -> str | None:
    if entry.is_text:
        return "text-generation"
    # the Hub has no class-conditional generation task: conditional models are tagged instead
    return None if entry.num_classes else "unconditional-image-generation"


def hub_card(entry: ModelEntry, meta: dict, num_parameters: int | None, repo: str) -> str:
    """README.md for the Hub: the project's model card under YAML metadata that the Hub indexes."""
    from huggingface_hub import EvalResult, ModelCardData
    key = _dataset_key(entry)
    dataset_id, dataset_name = HUB_DATASET[key]
    task = _task(entry)
    tags = ["gan", entry.family, entry.arch, entry.dataset, "pytorch", "safetensors", LIBRARY]
    if entry.num_classes:
        tags.append("class-conditional")
    metrics = {k: v for k, v in (meta.get("metrics") or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.endswith("_samples")}
    results = [EvalResult(task_type=task or "class-conditional-image-generation", dataset_type=dataset_id,
                          dataset_name=dataset_name, metric_type=k, metric_name=k.replace("_", " "), metric_value=v)
               for k, v in metrics.items()]
    # metrics (names) and model-index (values) only for what `python -m training evaluate` has measured
    data = ModelCardData(library_name=LIBRARY, tags=list(dict.fromkeys(tags)), datasets=[dataset_id],
                         metrics=list(metrics) or None, pipeline_tag=task, eval_results=results or None,
                         model_name=entry.name if results else None, **HUB_LICENSE[key])
    if entry.is_text:
        sample = "lines = g.sample_text(seeds=[0, 1, 2])"
    else:
        labels = ", labels=[7, 7, 7]" if entry.num_classes else ""
        sample = f"imgs = g.sample(seeds=[0, 1, 2]{labels})    # uint8 N×H×W×C"
    usage = ["", "## Use it", "", "```python", "from gan_demo import load_generator",
             f'g = load_generator("{repo}:{entry.name}")    # downloaded once into the Hugging Face cache',
             sample, "```", "",
             f"The app can take its models from a repository like this one: `GAN_DEMO_HUB_REPO={repo}`."]
    body = model_card(entry, meta, num_parameters).rstrip("\n") + "\n" + "\n".join(usage) + "\n"
    return f"---\n{data.to_yaml()}\n---\n\n{body}"


def stage(source: str, repo: str, folder) -> Staged:
    """Write what `push` uploads into `folder`. `source`: a run folder, a registry name or a checkpoint path."""
    from .export import export_run
    folder = Path(folder)
    src = Path(source)
    if src.is_dir():
        run_ckpt = src / "generator.safetensors"
        if not run_ckpt.is_file():
            raise PushError(f"{run_ckpt}: no exported generator in this run folder (train it first)")
        entry = read_checkpoint(run_ckpt)[0]
        dest = export_run(src, folder / entry.weights_file)
    else:
        try:
            path = resolve_weights(source)
        except KeyError as e:
            looks_like_a_path = "/" in source or "\\" in source or source.endswith(".safetensors")
            raise PushError(f"'{source}': no such run folder or checkpoint file" if looks_like_a_path
                            else str(e).strip("'\"")) from None
        entry = read_checkpoint(path)[0]
        dest = folder / entry.weights_file
        shutil.copyfile(path, dest)
    entry, state, meta = read_checkpoint(dest)
    n = count_parameters(state)
    card = dest.with_suffix(".md")
    card.write_text(model_card(entry, meta, n), encoding="utf-8")
    readme = folder / "README.md"
    readme.write_text(hub_card(entry, meta, n, repo), encoding="utf-8")
    return Staged(entry, folder, [dest, card, readme])


def check_repo_id(repo: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id
    if repo.count("/") != 1:
        raise PushError(f"--repo '{repo}': expected owner/name")
    try:
        validate_repo_id(repo)
    except HFValidationError as e:
        raise PushError(f"--repo '{repo}': {str(e).splitlines()[0]}") from None
    return repo


def push(source: str, repo: str, *, dry_run: bool = False, private: bool = False, message: str | None = None,
         out=print) -> list[str]:
    """Stage `source` and upload it to `repo` (created if needed); dry_run prints the files and the README and
    uploads nothing. → the file names in the repository."""
    check_repo_id(repo)
    with tempfile.TemporaryDirectory(prefix="gan_demo-push-") as tmp:
        staged = stage(source, repo, tmp)
        names = [f.name for f in staged.files]
        if dry_run:
            out(f"dry run: would upload {len(names)} files to https://huggingface.co/{repo} (nothing was uploaded)")
            for f in staged.files:
                out(f"  {f.name:32s} {f.stat().st_size:>12,d} bytes")
            out("--- README.md " + "-" * 66)
            out((staged.folder / "README.md").read_text(encoding="utf-8").rstrip("\n"))
            return names
        _upload(staged, repo, private=private,
                message=message or f"Upload {staged.entry.name} and its model card (gan_demo)")
        out(f"uploaded {', '.join(names)} to https://huggingface.co/{repo}")
        return names


def _upload(staged: Staged, repo: str, *, private: bool, message: str) -> None:
    """One commit holding the staged files; files already in the repository (other models) are left alone.
    The token is huggingface_hub's: `hf auth login`, or HF_TOKEN."""
    from huggingface_hub import HfApi
    from gan_demo import hub
    if hub.offline():
        raise PushError("HF_HUB_OFFLINE is set: cannot upload (--dry-run shows what would be uploaded)")
    api = HfApi()
    try:
        api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo, folder_path=str(staged.folder), repo_type="model", commit_message=message)
    except Exception as e:       # huggingface_hub's HTTP, token and network errors: one line for the CLI
        text = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        if "401" in text or "token" in text.lower():
            raise PushError(f"upload to {repo} refused ({text}): log in with `hf auth login` or set HF_TOKEN "
                            f"(a token with write access)") from None
        raise PushError(f"upload to {repo} failed ({type(e).__name__}: {text})") from None
