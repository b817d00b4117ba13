"""Interpolate tab: walk through latent space from seed A to seed B."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from .. import service
from .common import (
    BUTTON_WORK, MODEL_WORK, PICTURE_BUTTONS, download_name, gpu, model_menu, own_latent, png_file, seed_input,
    session_of, temp_file, user_errors)

INTRO = ("Every seed is a point in the generator's *latent space*. Walking from seed A's point to seed B's morphs "
         "one picture into the other: **lerp** goes in a straight line, **slerp** follows the sphere where "
         "random points actually lie (usually smoother). Click two images in *Faces* to set A and B.")


@gpu
@user_errors
def interpolate(model, seed_a, seed_b, steps, mode, truncation, latent_a=None, latent_b=None,
                request: gr.Request = None):
    """→ the frames as one strip (PNG), the looping walk as a GIF file and as an MP4 file. `latent_a`/`latent_b`
    (page states, not part of the API) are latents found in the Project tab; they replace a seed while the model
    is their own."""
    latent_a, latent_b = own_latent(latent_a, model), own_latent(latent_b, model)
    w = service.interpolate(model, seed_a, seed_b, steps, mode, truncation, session=session_of(request),
                            latent_a=latent_a, latent_b=latent_b)
    name = download_name(model, "walk", "projected" if latent_a else seed_a, "projected" if latent_b else seed_b)
    return (png_file(w.strip, name=f"{name}-frames"), temp_file(w.gif, ".gif", name=name),
            temp_file(w.mp4, ".mp4", name=name))


def first_walk(model, seed_a, seed_b, steps, mode, truncation, latent_a, latent_b, shown):
    """The walk made when the tab is first opened (between the seeds then in A and B), so it is never an empty
    frame; none (and no error box) while no image model can load, nothing when a walk is already shown."""
    if shown:
        return gr.skip()
    try:
        return interpolate(model, seed_a, seed_b, steps, mode, truncation, latent_a, latent_b)
    except gr.Error:
        return None, None, None


def show_first_walk(walk, shown):
    """Shows the first walk only if the visitor's own walk did not arrive while it was being made (the two can
    run at once): the first walk never replaces one that was asked for."""
    if shown or not walk:
        return gr.skip(), gr.skip(), gr.skip()
    return walk


def ends_note(latent_a, latent_b, model) -> str:
    ends = [f"{k}: **your projected picture**" + ("" if z.get("model") == model else f" (of {z.get('model')}: "
                                                  "choose that model to use it)")
            for k, z in (("A", latent_a), ("B", latent_b)) if isinstance(z, dict)]
    return "; ".join(ends) + " (its seed box is not used)." if ends else ""


def build() -> SimpleNamespace:
    with gr.Tab("Interpolate", id="interpolate") as tab:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                model = model_menu("image")
                with gr.Row():
                    seed_a = seed_input("Seed A", 0, "seed-a")
                    seed_b = seed_input("Seed B", 1, "seed-b")
                steps = gr.Slider(2, service.MAX_FRAMES, value=12, step=1, label="Steps (frames)")
                mode = gr.Radio(list(service.INTERPOLATION_MODES), value="slerp", label="Path")
                truncation = gr.Slider(*service.TRUNCATION_RANGE, value=1.0, step=0.05, label="Truncation")
                ends = gr.Markdown(elem_id="walk-ends")
                back = gr.Button("Back to seeds", size="sm", visible=False)
                run = gr.Button("Interpolate", variant="primary")
            with gr.Column(scale=3):
                gif = gr.Image(label="The walk, animated", type="filepath", height=300, buttons=PICTURE_BUTTONS,
                               elem_id="walk-gif", interactive=False)      # shown, never uploaded to
                with gr.Row():
                    gif_file = gr.DownloadButton("Download GIF", size="sm", elem_id="walk-gif-download")
                    mp4 = gr.DownloadButton("Download MP4", size="sm", elem_id="walk-mp4")
                strip = gr.Image(label="Frames, left to right", type="filepath", format="png",
                                 buttons=PICTURE_BUTTONS, elem_id="walk-strip")
        latent_a, latent_b = gr.State(None), gr.State(None)
        first = gr.State(None)          # the first walk's files, until it is known whether to show them
    inputs = [model, seed_a, seed_b, steps, mode, truncation, latent_a, latent_b]
    gr.on([run.click, seed_a.submit, seed_b.submit], interpolate, inputs, [strip, gif, mp4],
          api_name="interpolate", preprocess=False, **BUTTON_WORK).then(
        lambda g: g, gif, gif_file, api_visibility="private", queue=False)
    # made on opening the tab, not on every page load: most visits never open it
    tab.select(first_walk, [*inputs, gif], first, preprocess=False, api_visibility="private", **MODEL_WORK).then(
        show_first_walk, [first, gif], [strip, gif, mp4], preprocess=False, api_visibility="private",
        queue=False).then(
        lambda g: g, gif, gif_file, api_visibility="private", queue=False)
    noted = lambda a, b, m: (ends_note(a, b, m), gr.Button(visible=isinstance(a, dict) or isinstance(b, dict)))
    for trigger in (latent_a.change, latent_b.change, model.change):
        trigger(noted, [latent_a, latent_b, model], [ends, back], api_visibility="private", queue=False)
    back.click(lambda: (None, None), None, [latent_a, latent_b], api_visibility="private", queue=False)
    return SimpleNamespace(model=model, seed_a=seed_a, seed_b=seed_b, truncation=truncation, latent_a=latent_a,
                           latent_b=latent_b, run=run, inputs=inputs, outputs=[strip, gif, mp4],
                           interpolate=interpolate)
