"""Pieces every tab uses: error conversion, the GPU decorator, temporary files, model menus, seed inputs, sessions."""
from __future__ import annotations

import functools
import hashlib
import io
import ipaddress
import os
import re
import secrets
import shutil
import threading
import time
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder
from PIL import Image

from .. import memory, my_runs, service
from ...latents import MAX_SEED

try:                                    # on Hugging Face Spaces: run the decorated call on a (Zero)GPU
    import spaces
    gpu = spaces.GPU
except ImportError:                     # anywhere else: leave the function as it is
    def gpu(fn):
        return fn

# Every event that runs a generator shares one concurrency group, so the number of forwards in flight at once
# is bounded however many tabs or API clients call.
MODEL_WORK = dict(concurrency_id="generators", concurrency_limit=2)
# a button's work: a click while the last one still draws is not dropped but runs next, with the settings then shown
BUTTON_WORK = dict(MODEL_WORK, trigger_mode="always_last")
RANDOM_SEED_JS = f"() => Math.floor(Math.random() * {MAX_SEED + 1})"
PICTURE_BUTTONS = ["download", "fullscreen"]


def user_errors(fn):
    """Bad input (ValueError from the service) becomes a gr.Error: a message in the page, not a stack trace."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            raise gr.Error(str(e), print_exception=False) from None
        finally:
            memory.after_request()
    return wrapper


# --- files for gradio to serve -------------------------------------------------------------------------------
# Inside gradio's own cache folder, so gradio serves our files where they are instead of copying each one.
TEMP = Path(get_upload_folder()) / "gan_demo"
KEEP_S = 3600
_pruned = [0.0]
_prune_lock = threading.Lock()


def _prune() -> None:
    """Drop our files older than an hour, at most every ten minutes (gradio copies what it serves)."""
    with _prune_lock:
        now = time.time()
        if now - _pruned[0] < 600:
            return
        _pruned[0] = now
        for p in [*TEMP.glob("*"), *PRIVATE.glob("*/*")]:
            try:
                if now - p.stat().st_mtime > KEEP_S:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()      # folders: downloads of saved latents
            except OSError:
                pass


def temp_file(data: bytes, suffix: str, folder: Path | None = None, name: str | None = None) -> str:
    """Bytes → a file named by their hash (the same picture twice is one file), in TEMP or `folder`; with `name`
    (a download's, e.g. "celeba64-dcgan-walk-0-1"), <hash>/<name><suffix>, which a browser saves under that name."""
    folder = folder or TEMP
    _prune()
    digest = hashlib.sha1(data).hexdigest()[:20]
    path = folder / digest / f"{download_name(name)}{suffix}" if name else folder / f"{digest}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_suffix(f".{threading.get_ident()}.part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return str(path)


def png_file(img: Image.Image, folder: Path | None = None, name: str | None = None) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)        # 4× faster than the default level, files ~20% larger
    return temp_file(buf.getvalue(), ".png", folder, name)


def download_name(*parts) -> str:
    """A file name from its parts, e.g. ("my-run:3f2a", "seeds", 0, 15) → "my-run-3f2a-seeds-0-15"."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(str(p) for p in parts)).strip("-.")[:120] or "download"


def copy_file(path: Path | None) -> str | None:
    """A shipped file (which may live outside the folders gradio serves) as a servable copy."""
    return temp_file(path.read_bytes(), path.suffix) if path else None


# A session's own files (its trained generator's download, its run's sample grids) live in a folder with a random
# name that only that session is ever sent: gradio serves any file under its cache folder to whoever names its
# path, so the path must not follow from anything another visitor can know (the run's name, a hash of a picture).
# The folder goes when the session ends; the folders of servers no longer running go when the app starts.
PRIVATE = TEMP / f"private-{os.getpid()}"
_private: dict[str, Path] = {}
_private_lock = threading.Lock()


def private_dir(session: str) -> Path:
    with _private_lock:
        if session not in _private:
            _private[session] = PRIVATE / secrets.token_urlsafe(24)
        return _private[session]


def drop_private(session: str) -> None:
    with _private_lock:
        folder = _private.pop(session, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def clean_private_leftovers() -> None:
    """Delete the private folders of gan_demo servers that no longer run (killed ones)."""
    for folder in TEMP.glob("private-*"):
        pid = folder.name.split("-", 1)[1]
        if pid.isdigit() and not my_runs.process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


# --- sessions -------------------------------------------------------------------------------------------------
def session_of(request) -> str | None:
    """The browser session of a request (Gradio's session hash; an API client has one per Client). The service
    lets a session use the generators it trained in the Train tab ("my-run:<id>"), and no other session."""
    return getattr(request, "session_hash", None) or None


def own_latent(latent, model):
    """A latent found in the Project tab (a page state) when it belongs to `model`, else None: a found latent is
    used only with the model that found it, and the seed is used otherwise."""
    return latent if isinstance(latent, dict) and latent.get("model") == model else None


def client_of(request) -> str | None:
    """The caller's address, for per-client bounds (an API caller may open a new session for every call). When the
    direct peer is a private or loopback one (a proxy in front, as on Spaces): the last public address in
    X-Forwarded-For, the one the outermost proxy saw. Each proxy appends what it saw, so the addresses left of it
    are the client's own claims and cannot buy it a fresh quota. Else the peer itself."""
    peer = getattr(getattr(request, "client", None), "host", None)
    if not _internal(peer):
        return peer
    forwarded = (getattr(request, "headers", None) or {}).get("x-forwarded-for", "")
    hops = [h.strip()[:64] for h in forwarded.split(",") if h.strip()]
    return next((h for h in reversed(hops) if not _internal(h)), hops[0] if hops else peer)


def _internal(address) -> bool:
    """A private or loopback address (a proxy of the server's own network); False for public or unparseable ones."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback


# --- components -----------------------------------------------------------------------------------------------
def model_choices(names: list[str]) -> list[tuple[str, str]]:
    """Menu entries: the models that can be used first (in the usual order), then those whose checkpoint is
    missing or broken, flagged (choosing one says why: `explain_choice`)."""
    flagged = {n for n in names if service.STORE.status(n).startswith("not available")}
    return [(n, n) for n in names if n not in flagged] + [(f"{n} (not available)", n) for n in names if n in flagged]


def explain_choice(model) -> None:
    """A model chosen from a menu that cannot be used: say why at once, in a notice (not an error box)."""
    if isinstance(model, str) and model in service.REGISTRY:
        status = service.STORE.status(model)
        if status.startswith("not available"):
            gr.Warning(f"{model} is {status}. Choose a model higher in the menu.")


def model_menu(kind: str, label: str = "Model", elem_id: str | None = None) -> gr.Dropdown:
    """The menu, and under it a line with the chosen model's measured quality and training (`service.model_line`),
    kept up to date whenever the choice changes (by hand, on page load, or when a run of the Train tab ends)."""
    names = service.MODEL_KINDS[kind]()
    menu = gr.Dropdown(choices=[(n, n) for n in names], value=names[0], label=label, elem_id=elem_id)
    # a callable value is drawn on each page load: the line of the menu's first model, which the load usually
    # keeps (an unchanged value fires no change event)
    line = gr.Markdown(lambda: service.model_line(names[0]), elem_classes="model-line",
                       elem_id=elem_id and f"{elem_id}-line")

    def show(model, request: gr.Request = None):
        return service.model_line(model, session=session_of(request))

    menu.change(show, menu, line, api_visibility="private", **MODEL_WORK)
    return menu


def refreshed_menu(kind: str) -> gr.Dropdown:
    """The menu with current availability and the best available model selected (on every page load)."""
    return gr.Dropdown(choices=model_choices(service.MODEL_KINDS[kind]()), value=service.default_model(kind))


def menu_with_my_runs(kind: str, session: str | None, select: str | None = None) -> gr.Dropdown:
    """The menu plus the session's trained runs ("my <model> · <time>", newest first); `select` picks one of them if it
    fits this menu, else the selection stays."""
    mine = service.my_run_choices(kind, session)
    choices = mine + model_choices(service.MODEL_KINDS[kind]())
    if select is not None and any(name == select for _, name in mine):
        return gr.Dropdown(choices=choices, value=select)
    return gr.Dropdown(choices=choices)


def seed_input(label: str = "Seed", value: int = 0, elem_id: str | None = None) -> gr.Number:
    # precision=None and no bounds here: the service checks seeds, so every bad value gets the same message
    return gr.Number(value=value, label=label, precision=None, min_width=120, elem_id=elem_id)


def seed_row(label: str = "Seed", elem_id: str | None = None) -> tuple[gr.Number, gr.Button]:
    """A seed box and its Random button, side by side; wire the button with `on_random_seed`."""
    with gr.Row(equal_height=True):
        seed = seed_input(label, elem_id=elem_id)
        dice = gr.Button("Random", size="md", min_width=80, scale=0, elem_classes="dice")
    return seed, dice


def on_random_seed(dice: gr.Button, seed: gr.Number, then=None, inputs=None, outputs=None) -> None:
    """Random puts a random seed in the box (in the browser: no server call), then runs `then`, if given."""
    event = dice.click(None, None, seed, js=RANDOM_SEED_JS)
    if then is not None:
        event.then(then, inputs, outputs, preprocess=False, api_visibility="private", **MODEL_WORK)
