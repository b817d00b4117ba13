"""Project tab: bring your own picture (or draw a digit) and find the latent whose image is closest to it.

`/project` streams a progress bar while the search runs (in a worker thread, so Stop answers at once) and ends
with the picture as the model sees it, the reconstruction beside it, the error in words, and the latent as
`.npy` + `.json` files. The found latent then opens in Explore or becomes an end of the walk in Interpolate
(the wiring is in ui/__init__.py).
"""
from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
from gradio.utils import get_upload_folder

from .. import service
from ...render import to_pil
from .common import MODEL_WORK, PICTURE_BUTTONS, TEMP, model_menu, png_file, session_of

INTRO = ("Upload a picture, or draw a digit, and the app searches the model's latent space for the point whose "
         "picture is closest to yours (*GAN inversion*): several random starting points, then a few hundred small "
         "steps that reduce the difference in pixels and edges. Then **open it in Explore** to move it with the "
         "sliders, or **walk** from it in Interpolate. Expect a likeness, not a copy: these small GANs can only "
         "draw what they learned, so a face comes back as the nearest face this model can draw.")
SOURCES = [("Upload a picture", "upload"), ("Draw a digit", "draw")]
# the sketch pad opens with no tool chosen ("select the draw tool to start"): choose the brush for the visitor
# (it appears a moment after it is made visible, later on a busy machine: look for it for up to 5 s)
SELECT_BRUSH = """() => {
  let tries = 0;
  const pick = () => {
    const pad = document.querySelector('#project-sketch');
    const b = pad && pad.querySelector('button[aria-label="Brush"]');
    if (b && b.offsetParent !== null) {
      if (pad.dataset.brush !== 'on') { b.click(); pad.dataset.brush = 'on'; }   // once: a second click toggles
    } else if (++tries < 25) setTimeout(pick, 200);
  };
  setTimeout(pick, 200);
}"""
UPDATE_S = 0.5
DISPLAY = 224               # both pictures are shown at this size (nearest neighbour: pixels stay sharp)
CSS = """
#project-status .project-bar { height: 10px; border-radius: 5px; background: var(--neutral-200);
                               overflow: hidden; margin: 4px 0; }
#project-status .project-bar > div { height: 100%; background: var(--color-accent); transition: width 0.4s; }
#project-target img, #project-found img { image-rendering: pixelated; object-fit: contain; width: 100%;
                                          height: 100%; }
"""

_stops: dict[str, threading.Event] = {}        # session → the stop flag of its running search
_stops_lock = threading.Lock()


def _picture(source, upload, sketch):
    """The file the visitor gave, from the upload box or the sketch pad (gradio's file data, unprocessed), or
    None. Only files inside gradio's upload folder are read: an API client cannot name another file."""
    if source not in ("upload", "draw"):
        raise ValueError(f"the picture's source must be 'upload' or 'draw', got {service.quoted(source)}")
    if source == "draw":
        data = sketch.get("composite") if isinstance(sketch, dict) else None
    else:
        data = upload
    path = data.get("path") if isinstance(data, dict) else data
    if not path:
        return None
    path = Path(str(path)).resolve()
    if not path.is_relative_to(Path(get_upload_folder()).resolve()) or not path.is_file():
        raise ValueError("the picture must be uploaded with the request")
    return path


def _bar(step: int, total: int, text: str) -> str:
    pct = 100.0 * step / max(total, 1)
    return f'<div class="project-bar"><div style="width: {pct:.1f}%"></div></div>{text}'


def _latent_files(p, model: str) -> list[str]:
    """The latent as <model>-latent.npy + .json, in a folder named by its content (servable by gradio)."""
    key = hashlib.sha1(p.latent.numpy().tobytes() + model.encode()).hexdigest()[:16]
    folder = TEMP / f"latent-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    npy, meta = p.save(folder / f"{model.replace(':', '-')}-latent")
    return [str(npy), str(meta)]


def _summary(p, model: str) -> str:
    e = service.model_entry(model)
    lines = [f"**{p.error_text[0].upper()}{p.error_text[1:]}** after {p.steps} steps ({p.seconds:.1f} s)."]
    if p.label is not None:
        name = e.class_names[p.label] if e.class_names else p.label
        ranked = sorted(p.class_errors.items(), key=lambda kv: kv[1])[1:3]
        runners = ", ".join(f"{e.class_names[c] if e.class_names else c}" for c, _ in ranked)
        lines.append(f"Best-fitting class: **{name}**" + (f" (next: {runners})." if runners else "."))
    if p.notes:
        lines.append("Your picture was prepared: " + "; ".join(p.notes) + ".")
    return "\n\n".join(lines)


def project(model, source, upload, sketch, request: gr.Request = None):
    """Stream (status, picture as the model sees it, reconstruction, summary, latent files, latent for the page):
    a progress bar while the search runs, then the result. Stop (`/project_stop`) ends it with the best so far."""
    session = session_of(request) or "api"
    try:
        model = service.check_model(model, "image", session)
        picture = _picture(source, upload, sketch)
        if picture is None:
            raise ValueError("draw a digit first" if source == "draw" else "upload a picture first")
    except ValueError as e:
        raise gr.Error(str(e), print_exception=False) from None
    stop = threading.Event()
    with _stops_lock:
        _stops[session] = stop
    state = {"step": 0, "total": 1}
    box: dict = {}

    def work():
        try:
            box["result"] = service.project(model, str(picture), session=session, stop=stop,
                                            progress=lambda s, t, _loss: state.update(step=s, total=t))
        except ValueError as e:
            box["error"] = str(e)
        except Exception as e:          # never a stack trace in the page; the server log keeps the details
            box["error"] = f"the search failed ({type(e).__name__}: {e})"

    worker = threading.Thread(target=work, name="project", daemon=True)
    t0 = time.monotonic()
    worker.start()
    try:
        while worker.is_alive():
            worker.join(UPDATE_S)
            if worker.is_alive():
                text = f"Searching… step {state['step']} of {state['total']} ({time.monotonic() - t0:.0f} s)"
                yield (_bar(state["step"], state["total"], text),) + (gr.skip(),) * 5
    finally:
        stop.set()                      # a closed page (generator closed) ends the search too
        with _stops_lock:
            if _stops.get(session) is stop:
                del _stops[session]
    if "error" in box:
        raise gr.Error(box["error"], print_exception=False)
    p = box["result"]
    show = lambda a: png_file(to_pil(a).resize((DISPLAY, DISPLAY), 0))      # 0 = nearest neighbour
    done = "Stopped: the best latent so far." if p.stopped else "Done."
    yield (_bar(p.steps, max(p.steps, 1), done), show(p.target), show(p.reconstruction), _summary(p, model),
           _latent_files(p, model), service.latent_of(p, model))


def stop_search(request: gr.Request = None) -> str:
    with _stops_lock:
        flag = _stops.get(session_of(request) or "api")
    if flag is None:
        return gr.skip()
    flag.set()
    return "Stopping…"


def draws_digits(model) -> bool:
    try:
        return service.model_entry(model).dataset == "mnist"
    except (KeyError, TypeError):
        return False


def source_changed(source, model):
    """The input for the source; a drawing goes to a digit model (a face model turned one into a face-coloured
    blob), so choosing to draw selects the best digit model unless one is selected."""
    drawn_for = service.default_model("conditional") if source == "draw" and not draws_digits(model) else gr.skip()
    return gr.Image(visible=source == "upload"), gr.Sketchpad(visible=source == "draw"), drawn_for


def model_changed(model):
    """Digit models invite a drawing; the others a picture."""
    return "draw" if draws_digits(model) else "upload"   # the source's change event shows the right input


def build() -> SimpleNamespace:
    with gr.Tab("Project", id="project"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                model = model_menu("image", elem_id="project-model")
                source = gr.Radio(SOURCES, value="upload", label="Your picture")
                upload = gr.Image(label="Picture (PNG, JPEG, GIF, WebP, BMP, TIFF)", type="filepath",
                                  sources=["upload", "clipboard"], height=280, elem_id="project-upload")
                sketch = gr.Sketchpad(label="Draw one digit", type="filepath", format="png", canvas_size=(280, 280),
                                      fixed_canvas=True, layers=False, visible=False, elem_id="project-sketch",
                                      brush=gr.Brush(default_size=22, colors=["#000000"], color_mode="fixed"))
                with gr.Row():
                    run = gr.Button("Find it", variant="primary")
                    stop = gr.Button("Stop", variant="stop")
                status = gr.HTML(elem_id="project-status")
            with gr.Column(scale=2):
                with gr.Row():
                    target = gr.Image(label="Your picture, as the model sees it", type="filepath", height=260,
                                      buttons=PICTURE_BUTTONS, elem_id="project-target")
                    found = gr.Image(label="The closest picture the model can draw", type="filepath", height=260,
                                     buttons=PICTURE_BUTTONS, elem_id="project-found")
                summary = gr.Markdown(elem_id="project-summary")
                with gr.Row():
                    to_explore = gr.Button("Open in Explore", interactive=False)
                    to_a = gr.Button("Use as A in Interpolate", interactive=False)
                    to_b = gr.Button("Use as B in Interpolate", interactive=False)
                files = gr.File(label="Download the latent (.npy + .json: g.sample(latents='….npy') draws it again)",
                                file_count="multiple", interactive=False, height=120, elem_id="project-files")
        latent = gr.State(None)
    outputs = [status, target, found, summary, files, latent]
    event = run.click(project, [model, source, upload, sketch], outputs, api_name="project", preprocess=False,
                      **MODEL_WORK)
    enable = lambda z: [gr.Button(interactive=z is not None)] * 3
    event.then(enable, latent, [to_explore, to_a, to_b], api_visibility="private", queue=False)
    stop.click(stop_search, None, status, api_name="project_stop", queue=False)
    source.change(source_changed, [source, model], [upload, sketch, model], api_visibility="private",
                  queue=False).then(
        None, None, None, js=SELECT_BRUSH)
    model.change(model_changed, model, source, api_visibility="private", queue=False)
    return SimpleNamespace(model=model, latent=latent, to_explore=to_explore, to_a=to_a, to_b=to_b)
