"""What the app does, as plain functions: check the request, sample from a cached generator, build pictures.

No gradio here, so tests and other front ends call the same code. Bad input raises ValueError with a message
meant for the person who typed it; the UI shows it as gr.Error. The limits below bound the work of one request.
Models load lazily into `STORE` (thread-safe), so the page answers before any checkpoint is read.
Besides the registry names, a browser session may use the generators it trained in the Train tab, named
`my-run:<id>` (see my_runs.py): every function that takes a model takes the caller's `session` too, and such a
name passes only with the session that trained it.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import my_runs
from ..directions import compute_directions
from ..checkpoint import CheckpointError
from ..generator import GanGenerator, generator_from_checkpoint, resolve_weights, weights_dir
from ..latents import interpolation_path, truncate, walk
from ..loss_history import LossHistory, read_loss_history
from ..model_card import model_card, quality_summary, training_summary
from ..models import build_generator, count_parameters
from ..registry import REGISTRY, ModelEntry
from ..projection import Projection
from ..render import gif_bytes, make_grid, mp4_bytes, to_pil
from ..paths import beside_files, find_data, locate
from ..text_codec import TextCodec
from ..validate import MAX_SEED, flag, number, quoted, seed, whole

MAX_IMAGES = 64             # Faces grid
MAX_FRAMES = 60             # Interpolate steps
STRIP_COLUMNS = 12          # frames per row of the Interpolate strip
MAX_SENTENCES = 50          # Text
MAX_DIGIT_COLUMNS = 10      # Digits: seeds per digit (10 digits × 10 seeds at most)
N_SLIDERS = 8               # Explore: latent directions offered
SLIDER_RANGE = 5.0          # how far along a unit direction a slider goes (z has unit variance per dimension)
PREVIEW_AMOUNT = 3.0        # Explore: the small pictures beside each slider show it at -3 and +3
TRUNCATION_RANGE = (0.1, 1.0)
TEMPERATURE_RANGE = (0.1, 3.0)
INTERPOLATION_MODES = ("slerp", "lerp")
SMALL_IMAGE = 64            # images smaller than this (MNIST 28, CIFAR 32) are enlarged…
DISPLAY_SIZE = 128          # …by a whole factor, nearest neighbour, to at least this many pixels
FALLBACK_DIRECTION_SAMPLES = 500   # when a checkpoint lacks directions: fewer samples than export, fast enough

# Preferred order in the menus: faces first (the headline demo), then CIFAR-10, then digits.
DATASET_ORDER = {"celeba64": 0, "celeba128": 1, "cifar10": 2, "mnist": 3, "text": 4}


# --- input checks: gan_demo.validate (quoted, whole, number, seed, flag) -------------------------------------


def check_latent(latent, model: str) -> tuple[torch.Tensor, int | None]:
    """A latent found by `project` and sent back by the page ({"model", "z", "label"}) → (z, class); it must belong
    to `model` and be z_dim finite numbers (the page could send anything)."""
    if not isinstance(latent, dict) or not isinstance(latent.get("z"), (list, tuple)):
        raise ValueError("a latent must be {'model': name, 'z': [numbers], 'label': class or null}")
    if latent.get("model") != model:
        raise ValueError(f"that latent was found with {quoted(latent.get('model'))}, not {model}")
    e = model_entry(model)
    try:
        z = torch.tensor([float(v) for v in latent["z"]], dtype=torch.float32)
    except (TypeError, ValueError):
        raise ValueError("a latent must hold numbers only") from None
    if z.shape != (e.latent_dim,) or not torch.isfinite(z).all() or z.abs().max() > 100:
        raise ValueError(f"a latent of {model} is {e.latent_dim} finite numbers of moderate size")
    label = latent.get("label")
    if e.num_classes:
        label = whole(label, "class", 0, e.num_classes - 1)
    return z, (label if e.num_classes else None)


def seed_run(first: int, count: int) -> list[int]:
    """`count` consecutive seeds from `first`, wrapping past 2**32 - 1 so every start seed is valid."""
    return [(first + i) % (MAX_SEED + 1) for i in range(count)]


def _rank(name: str) -> tuple:
    e = REGISTRY[name]
    return DATASET_ORDER.get(e.dataset, 9), e.name


def image_models() -> list[str]:
    return sorted((n for n, e in REGISTRY.items() if not e.is_text), key=_rank)


def conditional_models() -> list[str]:
    # the conditional DCGAN draws the cleaner digits, so it comes first (and is the default)
    return sorted((n for n, e in REGISTRY.items() if e.num_classes and not e.is_text),
                  key=lambda n: (REGISTRY[n].family != "cdcgan", n))


def text_models() -> list[str]:
    return [n for n, e in REGISTRY.items() if e.is_text]


MODEL_KINDS = {"image": image_models, "conditional": conditional_models, "text": text_models,
               "any": lambda: list(REGISTRY)}


def check_model(name, kind: str = "any", session: str | None = None) -> str:
    """Only registry names of the right kind pass, and the session's own trained runs ("my-run:<id>", of a model
    of the right kind): nothing the user types ever becomes a file path."""
    allowed = MODEL_KINDS[kind]()
    if my_runs.is_name(name):
        run = my_runs.find(name, session)
        if run is None:
            raise ValueError(f"unknown model {quoted(name)}: a trained run can be used only in the browser session "
                             f"that trained it, while that session lasts")
        if run.model not in allowed:
            raise ValueError(f"{name} (a run of {run.model}) cannot be used here; choose one of: {', '.join(allowed)}")
        return name
    if isinstance(name, str) and name in allowed:
        return name
    if isinstance(name, str) and name in REGISTRY:
        raise ValueError(f"{name} cannot be used here (it is not a{'n' if kind == 'image' else ''} {kind} model);"
                         f" choose one of: {', '.join(allowed)}")
    raise ValueError(f"unknown model {quoted(name)}; choose one of: {', '.join(allowed)}")


def model_entry(name: str) -> ModelEntry:
    """The registry entry of a checked name (for a trained run: the entry of the model it is a run of)."""
    run = my_runs.locate(name) if my_runs.is_name(name) else None
    return REGISTRY[run.model if run else name]


def my_run_choices(kind: str, session: str | None) -> list[tuple[str, str]]:
    """Menu entries (label, name) for the session's trained runs that fit a menu of this kind, newest first."""
    allowed = set(MODEL_KINDS[kind]())
    return [(r.label, r.name) for r in my_runs.session_runs(session) if r.model in allowed]


# --- the model cache ------------------------------------------------------------------------------------------
def weights_path(name: str) -> Path:
    """The checkpoint of a checked name: weights/<name>.safetensors, or a trained run's generator."""
    if my_runs.is_name(name):
        run = my_runs.locate(name)
        return run.checkpoint if run else my_runs.runs_root() / name[len(my_runs.PREFIX):] / my_runs.CHECKPOINT
    return resolve_weights(name)


def _file_signature(path: Path):
    """Size and modification time, so a checkpoint replaced on disk (a new export) is loaded again."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@dataclass
class _Slot:
    path: Path
    signature: tuple | None
    generator: GanGenerator | None = None
    error: str | None = None
    directions: tuple | None = None          # (k×z vectors, labels), filled on first use
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelStore:
    """Loaded generators by registry name. Loads on first use; one lock per model, so two requests never load
    the same file twice while requests for other models carry on. A file that is missing or broken is
    remembered as "not available: <reason>" until the file changes."""

    def __init__(self, device=None):
        self.device = device
        self._slots: dict[str, _Slot] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def _fresh(self, name: str) -> _Slot | None:
        """The cached slot if it still describes the file on disk (the weights folder may change too)."""
        try:
            path = weights_path(name)
        except CheckpointError:           # a Hub repository without this model, or offline and not cached
            return None
        slot = self._slots.get(name)
        if slot and slot.path == path and slot.signature == _file_signature(path):
            return slot
        return None

    def _load(self, name: str) -> _Slot:
        try:
            path = weights_path(name)
        except CheckpointError as e:
            return _Slot(Path(f"{name}.safetensors"), None, error=str(e))
        signature = _file_signature(path)
        if signature is None:
            where = "its run folder (deleted?)" if my_runs.is_name(name) else "the weights folder"
            return _Slot(path, None, error=f"{path.name} not found in {where}")
        try:
            # the file must hold the model it is loaded as (a trained run: the model it is a run of)
            g = generator_from_checkpoint(path, self.device, expect=model_entry(name).name)
        except Exception as e:      # a weights file is outside input: its failure disables one model, not the app
            reason = str(e).replace(str(path), path.name).strip() or type(e).__name__
            return _Slot(path, signature, error=reason)
        return _Slot(path, signature, generator=g)

    def slot(self, name: str) -> _Slot:
        with self._lock(name):
            slot = self._fresh(name)
            if slot is None:
                slot = self._slots[name] = self._load(name)
        return slot

    def _ready(self, name: str) -> _Slot:
        slot = self.slot(name)
        if slot.error:
            raise ValueError(f"{name} is not available: {slot.error}")
        return slot

    def get(self, name: str) -> GanGenerator:
        """The generator for a checked registry name; ValueError 'not available: …' if it cannot load."""
        return self._ready(name).generator

    def status(self, name: str) -> str:
        """'ready' (loaded), 'available' (file present, loads on first use) or 'not available: <reason>'."""
        slot = self._fresh(name)
        if slot is None:
            try:
                path = weights_path(name)
            except CheckpointError as e:
                return f"not available: {e}"
            if _file_signature(path) is None:
                return f"not available: {path.name} not found in the weights folder"
            return "available"
        return f"not available: {slot.error}" if slot.error else "ready"

    def directions(self, name: str) -> tuple[torch.Tensor, list[str]]:
        """Up to N_SLIDERS unit latent directions and their labels: the checkpoint's, else computed once
        (GANSpace PCA) and kept in memory."""
        slot = self._ready(name)
        with slot.lock:
            if slot.directions is None:
                g = slot.generator
                vectors, labels = g.directions, list(g.direction_labels)
                if vectors is None:
                    d = compute_directions(g.net, g.entry.latent_dim, num_classes=g.entry.num_classes, k=N_SLIDERS,
                                           n=FALLBACK_DIRECTION_SAMPLES, dist=g.entry.latent_dist, device=g.device)
                    vectors, labels = d["vectors"], d["labels"]
                vectors = vectors[:N_SLIDERS].float().cpu()
                # "3 · thin ↔ bold": the number ties the slider to the card; unnamed ones read "direction 3"
                labels = [f"{i + 1} · {labels[i]}" if i < len(labels) and not labels[i].startswith("direction")
                          else f"direction {i + 1}" for i in range(len(vectors))]
                slot.directions = (vectors, labels)
        return slot.directions

    def forget(self, names) -> None:
        """Drop cached generators (a closed session's trained runs), so their memory is freed."""
        with self._guard:
            for name in names:
                self._slots.pop(name, None)
                self._locks.pop(name, None)

    def preload(self) -> dict[str, str]:
        """Load every available model (and its directions) now: for hosts such as Spaces' ZeroGPU, where what a
        GPU call caches does not outlive the call."""
        for name in REGISTRY:
            try:
                if not REGISTRY[name].is_text:
                    self.directions(name)
                else:
                    self.get(name)
            except ValueError:
                pass
        return model_statuses(self)


STORE = ModelStore()


def model_statuses(store: ModelStore = STORE, load: bool = False) -> dict[str, str]:
    """Every model's status; load=True first tries to load each, so a broken file shows its reason."""
    if load:
        for name in REGISTRY:
            store.slot(name)
    return {name: store.status(name) for name in REGISTRY}


def model_overview(store: ModelStore = STORE) -> list[tuple[str, str, str, str]]:
    """(name, status, quality, training) for every model, each loaded once: its headline quality and how it was
    trained, read from the checkpoint ('' where it does not load)."""
    rows = []
    for name, status in model_statuses(store, load=True).items():
        try:
            g = store.get(name) if status == "ready" else None
        except ValueError:
            g = None
        rows.append((name, status, quality_summary(g.metrics) if g else "",
                     training_summary(g.training_info) if g else ""))
    return rows


def model_line(name, store: ModelStore = STORE, session: str | None = None) -> str:
    """One line under a model menu: the chosen model's measured quality and how it was trained ('' for a name that
    is not a model), so the numbers are beside the pictures and not only in *Models*; faces add their licence."""
    try:
        name = check_model(name, session=session)
    except ValueError:
        return ""
    entry = model_entry(name)
    try:
        g = store.get(name)
    except ValueError:
        return f"{entry.name}: {store.status(name)}"
    quality, training = quality_summary(g.metrics) or "quality not measured", training_summary(g.training_info)
    parts = [f"your run of {entry.name}: {quality}" if my_runs.is_name(name) else quality,
             f"trained {training}" if training else "",
             "non-commercial research use only (CelebA)" if entry.dataset.startswith("celeba") else ""]
    return " · ".join(p for p in parts if p)


def default_model(kind: str, store: ModelStore = STORE) -> str:
    """The first model of that kind, in menu order, that actually loads; the first listed if none does."""
    names = MODEL_KINDS[kind]()
    for name in names:
        if not store.status(name).startswith("not available"):
            try:
                store.get(name)
                return name
            except ValueError:
                continue
    return names[0]


# --- pictures -------------------------------------------------------------------------------------------------
def enlarge(images: np.ndarray) -> np.ndarray:
    """N×H×W×C uint8: tiny images (28 px digits) repeated by a whole factor so their pixels stay sharp."""
    h = images.shape[1]
    if h >= SMALL_IMAGE:
        return images
    f = math.ceil(DISPLAY_SIZE / h)
    return images.repeat(f, axis=1).repeat(f, axis=2)


def _labels_for(g: GanGenerator, seeds: list[int]) -> list[int] | None:
    """Conditional models draw class seed % k for a seed, everywhere in the app, so a seed means one picture."""
    k = g.entry.num_classes
    return [s % k for s in seeds] if k else None


@dataclass
class Batch:
    images: list[Image.Image]       # one per seed, enlarged when tiny
    seeds: list[int]
    grid: Image.Image               # all of them in one picture (for download)


def generate(model, first_seed, count, truncation=1.0, store: ModelStore = STORE,
             session: str | None = None) -> Batch:
    model = check_model(model, "image", session)
    first_seed = seed(first_seed)
    count = whole(count, "grid size", 1, MAX_IMAGES)
    truncation = number(truncation, "truncation", *TRUNCATION_RANGE)
    g = store.get(model)
    seeds = seed_run(first_seed, count)
    imgs = enlarge(g.sample(seeds=seeds, truncation=truncation))
    return Batch([to_pil(x) for x in imgs], seeds, to_pil(make_grid(imgs)))


@dataclass
class Walk:
    frames: list[Image.Image]
    strip: Image.Image              # the frames in rows, left to right
    gif: bytes                      # the walk there and back, looping
    mp4: bytes                      # the same as an H.264 video, pixels enlarged crisply


def _start(model: str, seed_value, latent, what: str):
    """A checked starting point: a found latent (from Project) as (z, class), else the seed."""
    return check_latent(latent, model) if latent is not None else seed(seed_value, what)


def _latent(g: GanGenerator, start) -> tuple[torch.Tensor, int | None]:
    if isinstance(start, tuple):
        return start
    labels = _labels_for(g, [start])
    return g.latents([start])[0], labels[0] if labels else None


def interpolate(model, seed_a, seed_b, steps, mode="slerp", truncation=1.0, store: ModelStore = STORE,
                session: str | None = None, latent_a=None, latent_b=None) -> Walk:
    """Seed A to seed B; `latent_a`/`latent_b` (found by `project`) replace a seed."""
    model = check_model(model, "image", session)
    a, b = _start(model, seed_a, latent_a, "seed A"), _start(model, seed_b, latent_b, "seed B")
    steps = whole(steps, "steps", 2, MAX_FRAMES)
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"mode must be one of {', '.join(INTERPOLATION_MODES)}, got {quoted(mode)}")
    truncation = number(truncation, "truncation", *TRUNCATION_RANGE)
    g = store.get(model)
    (za, label_a), (zb, label_b) = _latent(g, a), _latent(g, b)
    path = interpolation_path(truncate(za, truncation), truncate(zb, truncation), steps, mode)
    za_label = label_a if latent_a is not None or latent_b is None else label_b
    # a conditional walk keeps one class: seed A's, or that of the picture the visitor projected
    labels = [za_label] * steps if za_label is not None else None
    small = g.sample(latents=path, labels=labels)
    imgs = enlarge(small)
    frames = [to_pil(x) for x in imgs]
    loop = frames + frames[-2:0:-1]             # there and back, so the loop has no jump
    duration = int(min(200, max(40, 3000 / steps)))
    video = [to_pil(x) for x in small]
    return Walk(frames, to_pil(make_grid(imgs, ncol=min(steps, STRIP_COLUMNS))), gif_bytes(loop, duration_ms=duration),
                mp4_bytes(video + video[-2:0:-1], fps=1000 / duration))


def direction_labels(model, store: ModelStore = STORE, session: str | None = None) -> list[str]:
    model = check_model(model, "image", session)
    return store.directions(model)[1]


def _explore_start(model, seed_value, truncation, store: ModelStore, session, latent):
    """The Explore tab's unmoved picture: (generator, truncated z, class or None, the model's directions)."""
    model = check_model(model, "image", session)
    start = _start(model, seed_value, latent, "seed")
    truncation = number(truncation, "truncation", *TRUNCATION_RANGE)
    g = store.get(model)
    z, label = _latent(g, start)
    return g, truncate(z, truncation), label, store.directions(model)[0]


def explore(model, seed_value, amounts, truncation=1.0, store: ModelStore = STORE,
            session: str | None = None, latent=None) -> Image.Image:
    """One image for a seed (or a latent found by `project`) moved along the model's principal latent directions
    by `amounts` (≤ N_SLIDERS)."""
    if not isinstance(amounts, (list, tuple)) or len(amounts) > N_SLIDERS:
        raise ValueError(f"give at most {N_SLIDERS} slider amounts")
    amounts = [number(v, f"slider {i + 1}", -SLIDER_RANGE, SLIDER_RANGE) for i, v in enumerate(amounts)]
    g, z, label, vectors = _explore_start(model, seed_value, truncation, store, session, latent)
    amounts = amounts[:len(vectors)]
    if amounts:
        z = walk(z, vectors, amounts)
    return to_pil(enlarge(g.sample(latents=z[None], labels=[label] if label is not None else None))[0])


def slider_previews(model, seed_value, truncation=1.0, store: ModelStore = STORE, session: str | None = None,
                    latent=None) -> list[Image.Image]:
    """What each slider does to this picture, shown before anyone drags it: per direction one small picture of
    the unmoved picture moved to -PREVIEW_AMOUNT (left) and +PREVIEW_AMOUNT (right), the other sliders at 0.
    Names measured from colour statistics cannot say "smiles" or "turns the head"; these pictures can."""
    g, z, label, vectors = _explore_start(model, seed_value, truncation, store, session, latent)
    ends = torch.stack([walk(z, vectors, [0] * i + [sign * PREVIEW_AMOUNT])
                        for i in range(len(vectors)) for sign in (-1, 1)])
    labels = [label] * len(ends) if label is not None else None
    images = enlarge(g.sample(latents=ends, labels=labels))
    return [to_pil(make_grid(images[2 * i:2 * i + 2], ncol=2)) for i in range(len(vectors))]


# --- bring your own picture -----------------------------------------------------------------------------------
def project(model, picture, store: ModelStore = STORE, session: str | None = None, progress=None,
            stop=None) -> Projection:
    """The latent of `model` whose image is closest to `picture` (a file path, bytes or PIL image), with the
    library's defaults (a few hundred Adam steps from several starts); see gan_demo.projection."""
    model = check_model(model, "image", session)
    if picture is None:
        raise ValueError("upload a picture (or draw a digit) first")
    return store.get(model).project(picture, progress=progress, stop=stop)


def latent_of(p: Projection, model: str) -> dict:
    """A projection's latent (found with `model`, a registry name or "my-run:…") as plain data for the page, and
    back through `check_latent`."""
    return {"model": model, "z": [round(float(v), 6) for v in p.latent[0]], "label": p.label}


@dataclass
class DigitGrid:
    image: Image.Image              # one row per digit, one column per seed
    digits: list[int]
    seeds: list[int]


def digits(model, chosen, first_seed, count, all_digits=False, store: ModelStore = STORE,
           session: str | None = None) -> DigitGrid:
    model = check_model(model, "conditional", session)
    k = model_entry(model).num_classes
    flag(all_digits, "'all digits'")
    if all_digits:
        rows = list(range(k))
    else:
        if not isinstance(chosen, (list, tuple)):
            raise ValueError(f"digits must be a list such as [3, 7], got {quoted(chosen)}")
        if not chosen:
            raise ValueError("choose at least one digit (or tick 'all ten digits')")
        if len(chosen) > k:
            raise ValueError(f"choose at most {k} digits")
        # API clients may send digits as strings ("7"); anything else goes through the usual check
        as_int = lambda d: int(d) if isinstance(d, str) and d.isdecimal() and len(d) <= 2 else d
        rows = sorted({whole(as_int(d), "digit", 0, k - 1) for d in chosen})
    first_seed = seed(first_seed)
    count = whole(count, "seeds per digit", 1, MAX_DIGIT_COLUMNS)
    g = store.get(model)
    seeds = seed_run(first_seed, count)
    imgs = enlarge(g.sample(seeds=seeds * len(rows), labels=[d for d in rows for _ in seeds]))
    return DigitGrid(to_pil(make_grid(imgs, ncol=count)), rows, seeds)


# --- text -----------------------------------------------------------------------------------------------------
_CODEC = TextCodec()
_corpus_lock = threading.Lock()
_corpus: dict[Path, frozenset] = {}


def canonical(sentence: str) -> str | None:
    """The sentence as the text GAN would write it (normalised, re-detokenised); None if it cannot be one."""
    ids = _CODEC.encode(sentence)
    return _CODEC.decode(ids) if ids else None


def corpus_path() -> Path | None:
    """The training sentences, found as the Train tab and the CLI find them (gan_demo.paths); None if absent."""
    root = find_data("text")
    return locate("text", root, layout_only=True) if root is not None else None


def training_sentences() -> frozenset | None:
    """Canonical forms of the corpus lines (read once, ~1 s), or None when the corpus is not on this machine."""
    path = corpus_path()
    if path is None:
        return None
    with _corpus_lock:
        if path not in _corpus:
            with open(path, encoding="utf-8", errors="replace") as f:
                _corpus[path] = frozenset(c for c in map(canonical, f) if c)
        return _corpus[path]


@dataclass
class Sentences:
    rows: list[tuple[int, str, bool | None]]    # (seed, sentence, copied from the training data; None: unknown)
    summary: str


def text(model, first_seed, count, temperature=None, store: ModelStore = STORE,
         session: str | None = None) -> Sentences:
    """`count` sentences; temperature None (or 0) takes the likeliest character at each position."""
    model = check_model(model, "text", session)
    first_seed = seed(first_seed)
    count = whole(count, "number of sentences", 1, MAX_SENTENCES)
    if temperature is not None and temperature != 0:
        temperature = number(temperature, "temperature", *TEMPERATURE_RANGE)
    g = store.get(model)
    seeds = seed_run(first_seed, count)
    lines = g.sample_text(seeds=seeds, temperature=temperature or None)
    known = training_sentences()
    if known is None:
        return Sentences([(s, t, None) for s, t in zip(seeds, lines)],
                         "The training corpus is not on this machine, so copies cannot be counted.")
    copied = [canonical(t) in known for t in lines]
    summary = (f"**{sum(copied)} of {count}** sentences are verbatim copies of a training sentence "
               f"(compared after normalisation with the {len(known):,} distinct training sentences).")
    return Sentences([(s, t, c) for s, t, c in zip(seeds, lines, copied)], summary)


# --- model cards ----------------------------------------------------------------------------------------------
@dataclass
class ModelInfo:
    name: str
    status: str
    markdown: str
    losses: Path | None             # <name>-losses.png beside the checkpoint, if shipped
    loss_history: Path | None       # <name>-losses.json: the same curves as data (gan_demo.loss_history), if shipped
    progress: Path | None           # <name>-progress.gif: samples of fixed latents over training
    shipped_step: int | None = None # the training step of the shipped weights (a campaign ships its best snapshot)


def _architecture_parameters(entry: ModelEntry) -> int:
    """Generator size without weights: the network built on the meta device costs no memory or time."""
    with torch.device("meta"):
        return count_parameters(build_generator(entry.arch, entry.config))


_animations: dict[tuple, bytes] = {}


def training_animation(path: Path) -> bytes:
    """The training GIF, made to open on its last frame (what the model learned, held 2 s) before it plays from
    the first noisy samples: a still of the GIF, or its first second, is then a meaningful picture."""
    key = (path, _file_signature(path))
    data = _animations.get(key)             # read once: another thread may clear the cache at any moment
    if data is None:
        with Image.open(path) as gif:
            frames, durations = [], []
            for i in range(getattr(gif, "n_frames", 1)):
                gif.seek(i)
                frames.append(gif.convert("RGB"))
                durations.append(gif.info.get("duration", 250))
        data = gif_bytes([frames[-1]] + frames, duration_ms=[2000] + durations)
        _animations.clear()                 # one at a time: the card being looked at
        _animations[key] = data
    return data


def loss_history(info: ModelInfo) -> LossHistory | None:
    """The model's shipped loss history; None where it ships none or the file is not one (the card then shows the
    loss-curve picture, as for checkpoints exported before loss histories were)."""
    if info.loss_history is None:
        return None
    try:
        return read_loss_history(info.loss_history)
    except ValueError:
        return None


def model_info(name, store: ModelStore = STORE) -> ModelInfo:
    name = check_model(name)
    entry = REGISTRY[name]
    folder = weights_dir()
    try:
        g = store.get(name)
    except ValueError:
        g = None
    status = store.status(name)
    # the card is written afresh from the checkpoint (metrics as a table with their meaning), not read from the
    # shipped .md, which older exports wrote with raw metric keys
    card = model_card(entry, None, _architecture_parameters(entry)) if g is None else \
        model_card(g.entry, g.meta, g.num_parameters)
    head = f"**Status: {status}**" if g is None else f"Status: {status}"
    existing = lambda p: p if p.is_file() else None
    step = (g.training_info.get("steps") if g is not None else None)
    beside = beside_files(folder, name)
    return ModelInfo(name, status, f"{head}\n\n{card}", existing(beside.loss_curve), existing(beside.loss_history),
                     existing(beside.progress),
                     step if isinstance(step, int) else None)
