"""Train tab: a short training run from the browser, live losses and samples, Stop, and the result as "my run".

The work is done by the job manager, gan_demo/app/jobs/ (the same Trainer as the CLI, in a background thread, one slot per run,
queue, time limit, heartbeat), imported on first use: importing gan_demo.app.ui never imports `training`.
`/train` streams (loss chart, sample grid, sample sentences, progress, download) every UPDATE_S seconds until the
run ends; `/train_stop` stops the caller's run. A run belongs to the browser session (gr.Request.session_hash)
that started it: only that session sees it, stops it, and finds it in the other tabs' menus as "my run".
"""
from __future__ import annotations

import shutil
import threading
import time
from types import SimpleNamespace

import gradio as gr

from .. import service
from ...checkpoint import atomic_write
from ...registry import REGISTRY
from ...render import to_pil, upscale
from ...text_codec import EOS, PAD, SOS, detokenize
from .charts import loss_figure
from .common import (PICTURE_BUTTONS, client_of, drop_private, menu_with_my_runs, png_file, private_dir,
                     session_of)

INTRO = ("Train a GAN yourself, here and now: pick a model, a number of steps, a batch size and a learning rate, "
         "and watch the **discriminator** (or critic) and **generator** losses pull against each other while the "
         "same 64 seeds turn from noise into pictures. **Stop** ends the run within seconds and keeps what was "
         "learned. When the run ends, its generator is **my** *model* in the other tabs' model menus (for this "
         "browser tab only) and can be downloaded as a `.safetensors` file that `load_generator` and the CLI read. "
         "Runs are short on purpose: the server trains one run at a time and bounds every run.")
SAMPLES_CAPTION = "The same 64 seeds, redrawn every few seconds: noise at first, then shapes."
UPDATE_S = 2.0              # how often the page gets news of a run
ABANDON_S = 20.0            # a run whose stream nobody has read for this long is stopped
SAMPLE_DISPLAY = 480        # sample grids smaller than this are enlarged (nearest neighbour: sharp pixels)
START_FROM = [("From scratch", "scratch"), ("Fine-tune the shipped checkpoint", "finetune")]
CSS = """
#train-status .train-bar { height: 10px; border-radius: 5px; background: var(--neutral-200); overflow: hidden;
                           margin: 4px 0 8px 0; }
#train-status .train-bar > div { height: 100%; background: var(--color-accent); transition: width 0.5s; }
#train-samples img { image-rendering: pixelated; object-fit: contain; }
#train-caption { text-align: center; font-size: var(--text-sm); color: var(--body-text-color-subdued); }
"""

_jobs_module = None
_jobs_lock = threading.Lock()


def jobs():
    """gan_demo.app.jobs, the app's one entry point into the training package, imported on first use."""
    global _jobs_module
    with _jobs_lock:
        if _jobs_module is None:
            from .. import jobs as module
            _jobs_module = module
        return _jobs_module


def manager():
    return jobs().manager()


# --- pictures -------------------------------------------------------------------------------------------------
def sample_file(view, session: str) -> str | None:
    if view.image is None:
        return None
    return png_file(upscale(to_pil(view.image), SAMPLE_DISPLAY), private_dir(session))


def download_file(view, session: str) -> str | None:
    """A servable copy of the run's generator, named after the model and run, in the session's private folder."""
    if not view.usable or not view.checkpoint.is_file():
        return None
    folder = private_dir(session)
    path = folder / f"{view.model}-my-run-{view.run_id}.safetensors"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: shutil.copyfile(view.checkpoint, tmp))
    return str(path)


def _tabs_for(model: str) -> str:
    e = REGISTRY[model]
    if e.is_text:
        return "*Text*"
    return "*Faces*, *Interpolate*, *Explore*" + (" and *Digits*" if e.num_classes else "")


def status_markdown(view) -> str:
    """Where the run stands, in words, with a progress bar."""
    j = jobs()
    pct = 100.0 * view.step / max(view.total, 1)
    bar = f'<div class="train-bar"><div style="width: {pct:.1f}%"></div></div>'
    what = f"{view.model}, {view.total:,} steps, batch {view.batch}, lr {view.lr:g}" + \
           (", fine-tuning the shipped checkpoint" if view.finetune else "")
    if view.state == "queued":
        m = manager()
        soon = f" (it ends within {j.minutes(view.slot_free_in_s)})" if view.slot_free_in_s is not None else ""
        return (f"**Queued: you are number {view.queue_position} in line.** The server trains "
                f"{m.max_runs} run{'s' if m.max_runs > 1 else ''} at a time and another visitor's run is "
                f"training{soon}. Yours ({what}) starts by itself; keep this tab open.")
    if view.state == "loading":
        return f"{bar}\n\n**Preparing {view.model}**: {view.message or 'loading the data'}…"
    if view.state in ("training", "stopping"):
        rate = f" · {view.steps_per_s:,.1f} steps/s" if view.steps_per_s else ""
        left = ""
        if view.eta_s is not None:
            left = f" · about {j.minutes(min(view.eta_s, max(0, view.time_limit_s - view.elapsed_s)))} left"
        head = f"{bar}\n\n**Training {view.model}**: step {view.step:,} of {view.total:,} ({pct:.0f} %){rate}{left}"
        tail = (f"\n\nOn {view.device.upper() if view.device == 'cpu' else view.device} · batch {view.batch} · "
                f"lr {view.lr:g} · elapsed {j.minutes(view.elapsed_s)} of at most "
                f"{j.minutes(view.time_limit_s)}")
        if view.state == "stopping":
            tail += f"\n\n**Stopping** ({view.stop_reason}): saving what was learned…"
        elif view.message:
            tail += f" · {view.message}"
        return head + tail
    use = ""
    if view.usable:
        use = (f"\n\nYour generator is now **my {view.model}** in the model menus of {_tabs_for(view.model)} (in "
               f"this browser tab; its name is `{view.name}`), and you can download it below.")
    if view.state == "finished":
        return (f"{bar}\n\n**Done**: {view.total:,} steps of {view.model} in {j.minutes(view.elapsed_s)}."
                f"{use}")
    if view.state == "stopped":
        reason = f" ({view.stop_reason})" if view.stop_reason else ""
        note = view.message or "what was learned is kept"
        return f"{bar}\n\n**Stopped** at step {view.step:,} of {view.total:,}{reason}: {note}.{use}"
    return f"**The run failed**: {view.error}. The trainer is free for the next run."


def clean_sentence(raw: str) -> str:
    """The trainer's raw sample ('<SOS>hello world<EOS>') as the Text tab writes it ('Hello world')."""
    return detokenize(raw.split(EOS)[0].replace(SOS, "").replace(PAD, "")) or "(empty sentence)"


def _outputs(view, session: str) -> tuple:
    text = "\n".join(map(clean_sentence, view.text)) if view.text is not None else ""
    chart = loss_figure(view.history, total=view.total, wasserstein=view.wasserstein)   # grows left to right
    return chart, sample_file(view, session), text, status_markdown(view), download_file(view, session)


# --- events ---------------------------------------------------------------------------------------------------
def _unread(request) -> int | None:
    """How many messages gradio holds for this session that nobody has fetched: an API caller that started a run
    (POST /call/train) and never reads its stream, or stopped reading, has gone away. (gradio keeps them in its
    queue's per-session message queue; None if that cannot be read.)"""
    try:
        messages = request.request.app.get_blocks()._queue.pending_messages_per_session
        return messages[request.session_hash].qsize()
    except Exception:                   # another gradio version: the heartbeat (no more polls) still applies
        return None


class Abandoned:
    """Called with the unread count at each turn of a stream: True once messages have waited unread, and none
    was fetched, for ABANDON_S (a reader fetches each at once; a queued run yields seldom, so a count alone
    would not do)."""

    def __init__(self, clock=time.monotonic):
        self.count, self.since, self.clock = 0, None, clock

    def __call__(self, unread: int | None) -> bool:
        now = self.clock()
        if not unread or unread < self.count:           # fetched: someone is reading
            self.since = None
        elif self.since is None:
            self.since = now
        self.count = unread or 0
        return self.since is not None and now - self.since > ABANDON_S


def train(model, steps, batch, lr, start_from, request: gr.Request = None):
    """Start a run and stream it: (loss chart, sample grid PNG, sample sentences, progress Markdown, generator
    download) every few seconds until it ends. A queued run streams its place in the line first."""
    if start_from not in ("scratch", "finetune"):
        raise gr.Error(f"start from must be 'scratch' or 'finetune', got {service.quoted(start_from)}",
                       print_exception=False)
    m, session = manager(), session_of(request)
    abandoned = Abandoned()
    try:
        view = m.start(session, model, steps, batch, lr, finetune=start_from == "finetune",
                       client=client_of(request))
    except ValueError as e:
        raise gr.Error(str(e), print_exception=False) from None
    shown = -1
    try:
        while True:
            if view.version != shown:
                shown = view.version
                yield _outputs(view, session)
            if view.finished:
                break
            if abandoned(_unread(request)):
                m.stop(session, "nobody was reading its progress (the caller went away)")
            view = m.wait(session, timeout=UPDATE_S, finished=True)     # news every UPDATE_S, the end at once
    except GeneratorExit:                 # the stream was closed (the page went away): nobody is watching
        m.stop(session, "the page stopped following the run")
        raise
    if view.state == "failed":
        raise gr.Error(f"The run failed: {view.error}", print_exception=False)


def stop(request: gr.Request = None) -> str:
    """Stop this session's run (cleanly, within a step; what was learned is kept)."""
    view = manager().stop(session_of(request))
    if view is None:
        return "No run to stop: start one first."
    if view.finished:
        return status_markdown(view)
    return f"**Stopping** {view.model} at step {view.step:,}: saving what was learned…"


def settings(model):
    """A model's bounds and defaults: steps, batch size, learning rate, start-from choices, a note; the sample
    grid for image models, sentences for the text model."""
    m = manager()
    try:
        lim = m.limits(model)
    except KeyError:
        return [gr.skip()] * 8
    shipped = m.can_finetune(model)
    note = ("" if shipped else f"No shipped checkpoint of {model} in the weights folder, so it trains from "
                               f"scratch.")
    is_text = REGISTRY[model].is_text
    return (gr.Slider(minimum=lim.min_steps, maximum=lim.max_steps, value=lim.default_steps,
                      info=f"{lim.min_steps} to {lim.max_steps:,} for {model} on this machine"),
            gr.Slider(minimum=lim.min_batch, maximum=lim.max_batch, value=lim.default_batch,
                      info=f"{lim.min_batch} to {lim.max_batch}"),
            gr.Number(value=lim.default_lr),
            gr.Radio(choices=START_FROM if shipped else START_FROM[:1], value="scratch"),
            note, gr.Image(visible=not is_text), gr.Markdown(visible=not is_text), gr.Textbox(visible=is_text))


def server_status() -> str:
    m = manager()
    load = m.load()
    where = "a GPU" if m.device.startswith("cuda") else m.device.upper()
    busy = ("the trainer is free" if not load["training"] else
            f"{load['training']} run{'s' if load['training'] > 1 else ''} training, {load['queued']} waiting")
    return (f"This server trains on {where}, {m.max_runs} run{'s' if m.max_runs > 1 else ''} at a time, each for "
            f"at most {jobs().minutes(m.time_limit_s)}; right now {busy}.")


def filled_lr(model, lr):
    """A blank learning rate trains with the model's default: the field then shows it, instead of staying blank."""
    if lr is not None or model not in REGISTRY:
        return gr.skip()
    return manager().limits(model).default_lr


def shown_if_present(path):
    """The download button appears once there is a generator to download."""
    return gr.DownloadButton(visible=path is not None)


def my_run_menus(request: gr.Request = None):
    """After a run: the other tabs' menus (Faces, Interpolate, Explore, Digits, Text, Project) with the session's runs,
    the new one selected where it fits; and the Faces note says so."""
    session = session_of(request)
    view = manager().view(session) if session else None
    new = view.name if view is not None and view.usable else None
    image = lambda: menu_with_my_runs("image", session, new)
    note = gr.skip()
    if new is not None and not REGISTRY[view.model].is_text:
        note = f"Your run ({view.model}, {view.step:,} steps) is selected: the grid shows its pictures."
    return (image(), image(), image(), menu_with_my_runs("conditional", session, new),
            menu_with_my_runs("text", session, new), image(), note)


def end_session(request: gr.Request = None) -> None:
    """The tab was closed: stop its run, delete its runs and its private files, free their cached generators."""
    session = session_of(request)
    if session:
        drop_private(session)
    if session and _jobs_module is not None:
        service.STORE.forget(manager().end_session(session))


def build() -> SimpleNamespace:
    m = manager()
    models = m.models()
    default = "mnist-gan" if "mnist-gan" in models else models[0]
    lim = m.limits(default)
    missing = [n for n in REGISTRY if n not in models]
    with gr.Tab("Train", id="train") as tab:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                model = gr.Dropdown([(n, n) for n in models], value=default, label="Model to train")
                start_from = gr.Radio(START_FROM if m.can_finetune(default) else START_FROM[:1], value="scratch",
                                      label="Start from")
                steps = gr.Slider(lim.min_steps, lim.max_steps, value=lim.default_steps, step=1, label="Steps",
                                  info=f"{lim.min_steps} to {lim.max_steps:,} for {default} on this machine")
                batch = gr.Slider(lim.min_batch, lim.max_batch, value=lim.default_batch, step=8, label="Batch size",
                                  info=f"{lim.min_batch} to {lim.max_batch}")
                lr = gr.Number(value=lim.default_lr, label="Learning rate (G and D)", minimum=lim.lr_range[0],
                               maximum=lim.lr_range[1], info="from 0.00001 to 0.01", elem_id="train-lr")
                with gr.Row():
                    start = gr.Button("Start training", variant="primary", elem_id="train-start")
                    halt = gr.Button("Stop", variant="stop", elem_id="train-stop")
                download = gr.DownloadButton("Download the generator (.safetensors)", visible=False,
                                             elem_id="train-download")
                note = gr.Markdown("" if m.can_finetune(default) else
                                   f"No shipped checkpoint of {default} in the weights folder, so it trains from "
                                   f"scratch.")
                server = gr.Markdown(server_status(), elem_id="train-server")
                if missing:
                    gr.Markdown(f"Not offered here, for lack of their training data: {', '.join(missing)} "
                                f"(point GAN_DEMO_DATA at a folder holding them).")
            with gr.Column(scale=3):
                status = gr.Markdown("Choose the settings and press **Start training**.", elem_id="train-status")
                with gr.Row():
                    with gr.Column(scale=3, min_width=320):
                        plot = gr.Plot(loss_figure(), label="Losses", show_label=False, elem_id="train-plot")
                    with gr.Column(scale=2, min_width=240):
                        samples = gr.Image(label="Samples: the same 64 seeds as the generator draws them now",
                                           show_label=False, type="filepath", format="png", height=380,
                                           buttons=PICTURE_BUTTONS, elem_id="train-samples",
                                           visible=not REGISTRY[default].is_text)
                        caption = gr.Markdown(SAMPLES_CAPTION, visible=not REGISTRY[default].is_text,
                                              elem_id="train-caption")
                        sentences = gr.Textbox(label="Sample sentences (8 fixed seeds)", lines=10,
                                               interactive=False, visible=REGISTRY[default].is_text,
                                               elem_id="train-text")
        # while a run is on, the server note is refreshed (it said "the trainer is free" during a run). Made inside
        # the tab: a component between two gr.Tab()s in gr.Tabs() shifts the next tab's place, and Gradio then shows
        # that tab's button twice once it is opened.
        ticker = gr.Timer(3.0, active=False)
    # No concurrency limit: a /train call never waits in gradio's queue, which every endpoint shares (70 waiting
    # training calls once filled it, and every endpoint answered "Queue is full" for hours). The job manager takes
    # a call or refuses it at once (its bounds: runs at once, runs waiting, runs per client); a call it takes
    # streams its progress and holds no worker between updates.
    # the button's other listeners come before the streaming call: listed after it, Gradio 6.31 never ran them
    # (the ticker stayed off: "the trainer is free" throughout a run)
    start.click(lambda: gr.Timer(active=True), None, ticker, api_visibility="private", queue=False)
    start.click(lambda: gr.DownloadButton(visible=False), None, download, api_visibility="private", queue=False)
    start.click(filled_lr, [model, lr], lr, api_visibility="private", queue=False)
    ticker.tick(server_status, None, server, api_visibility="private", queue=False)
    finished = start.click(train, [model, steps, batch, lr, start_from], [plot, samples, sentences, status, download],
                           api_name="train", preprocess=False, concurrency_id="train", concurrency_limit=None,
                           show_progress="hidden")                 # (the job manager checks every setting)
    finished.then(shown_if_present, download, download, api_visibility="private", queue=False).then(
        lambda: (server_status(), gr.Timer(active=False)), None, [server, ticker], api_visibility="private",
        queue=False)
    halt.click(stop, None, status, api_name="train_stop", concurrency_id="train_stop", concurrency_limit=None)
    model.change(settings, model, [steps, batch, lr, start_from, note, samples, caption, sentences],
                 api_visibility="private", queue=False)
    tab.select(server_status, None, server, api_visibility="private", queue=False)
    return SimpleNamespace(finished=finished, my_run_menus=my_run_menus, end_session=end_session)
