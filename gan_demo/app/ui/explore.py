"""Explore tab: move one picture along the main directions of the latent space with sliders."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from .. import service
from .common import (
    MODEL_WORK, PICTURE_BUTTONS, gpu, model_menu, on_random_seed, own_latent, seed_row, session_of, user_errors)

INTRO = ("Each slider moves the picture along one of the directions in which this model's pictures vary most "
         "(principal components of the generator's features, as in GANSpace); direction 1 varies the most. "
         "Each is named after what it was measured to do, left end ↔ right end (e.g. *thin ↔ bold*), or, where "
         "colour measurements fall short, after what a person saw it do (the faces' *serious ↔ smiling*); the "
         f"model's card on the Models tab lists them all. Beside each slider, this picture at "
         f"-{service.PREVIEW_AMOUNT:g} and +{service.PREVIEW_AMOUNT:g} along it. Drag a slider and watch.")


@gpu
@user_errors
def picture(session, model, seed, truncation, latent, *amounts):
    """The seed's picture (or the found latent's) moved by `amounts` along directions 1…8."""
    return service.explore(model, seed, list(amounts), truncation, session=session, latent=latent)


def retyping(seed, truncation, latent) -> bool:
    """A box emptied to type a new value (the seed's, unless a found latent stands in for it, or the truncation's):
    the pictures wait for the value instead of reporting an error."""
    return (seed is None and latent is None) or truncation is None


def explore(request: gr.Request, model, seed, truncation, latent, *amounts):
    """→ one image. An empty seed or truncation (the box cleared while typing a new one) leaves the picture as it
    is. A latent from the Project tab (a page state, not part of the API) replaces the seed while the model is its
    own.
    (The request comes first: gradio passes it only to a positional parameter, and the amounts are *args.)"""
    latent = own_latent(latent, model)
    if retyping(seed, truncation, latent):
        return gr.skip()
    return picture(session_of(request), model, seed, truncation, latent, *amounts)


@gpu
@user_errors
def previews(session, model, seed, truncation, latent):
    return service.slider_previews(model, seed, truncation, session=session, latent=latent)


def slider_previews(request: gr.Request, model, seed, truncation, latent):
    """→ one small picture per slider (hidden past the model's directions); like `explore`, an empty seed or a
    model that cannot load leaves them as they are: the big picture reports the problem."""
    latent = own_latent(latent, model)
    if retyping(seed, truncation, latent):
        return [gr.skip()] * service.N_SLIDERS
    try:
        pictures = previews(session_of(request), model, seed, truncation, latent)
    except gr.Error:
        return [gr.skip()] * service.N_SLIDERS
    return [gr.Image(pictures[i], visible=True) if i < len(pictures) else gr.Image(None, visible=False)
            for i in range(service.N_SLIDERS)]


def latent_note(latent, model) -> str:
    if not isinstance(latent, dict):
        return ""
    if latent.get("model") != model:
        return f"Your projected picture belongs to {latent.get('model')}: choose it again to move it."
    return "Starting point: **your projected picture** (the seed is not used until you press *Back to seeds*)."


@gpu
def direction_labels(model, session=None) -> list[str]:
    # on the GPU: a checkpoint without directions has them computed here, once
    return service.direction_labels(model, session=session)


def slider_setup(model, request: gr.Request = None):
    """Slider labels from the model's directions; sliders past the number of directions are hidden. For a model
    that cannot load they stay as they are: the picture that follows reports the problem once, not every slider.
    (Components are built here, outside the GPU call, whose results must be plain data.)"""
    try:
        labels = direction_labels(model, session_of(request))
    except ValueError:
        return [gr.skip()] * service.N_SLIDERS
    return [gr.Slider(label=labels[i] if i < len(labels) else f"direction {i + 1}", visible=i < len(labels))
            for i in range(service.N_SLIDERS)]


def build() -> SimpleNamespace:
    with gr.Tab("Explore", id="explore") as tab:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                model = model_menu("image")
                seed, dice = seed_row(elem_id="explore-seed")
                truncation = gr.Slider(*service.TRUNCATION_RANGE, value=1.0, step=0.05, label="Truncation")
                with gr.Row():
                    reset = gr.Button("Reset sliders")
                    back = gr.Button("Back to seeds", visible=False)
                note = gr.Markdown(elem_id="explore-note")
                image = gr.Image(label="Picture", format="png", height=320, buttons=PICTURE_BUTTONS,
                                 elem_id="explore-image")
            with gr.Column(scale=2):
                sliders, ends = [], []
                for i in range(service.N_SLIDERS):
                    with gr.Row(equal_height=True):
                        sliders.append(gr.Slider(-service.SLIDER_RANGE, service.SLIDER_RANGE, value=0, step=0.1,
                                                 label=f"direction {i + 1}", scale=4))
                        ends.append(gr.Image(format="png", height=72, show_label=False, container=False,
                                             interactive=False, buttons=[], scale=1, min_width=100,
                                             elem_classes="slider-ends"))
        latent = gr.State(None)
    inputs = [model, seed, truncation, latent, *sliders]
    start = [model, seed, truncation, latent]
    # last call wins: while one picture renders, only the newest slider position waits
    gr.on([s.change for s in sliders] + [seed.change, truncation.change], explore, inputs, image,
          api_name="explore", preprocess=False, trigger_mode="always_last", show_progress="minimal", **MODEL_WORK)
    # the end pictures follow the unmoved picture: its seed, truncation or found latent, not the sliders
    gr.on([seed.change, truncation.change, latent.change], slider_previews, start, ends, api_visibility="private",
          preprocess=False, trigger_mode="always_last", show_progress="hidden", **MODEL_WORK)
    on_random_seed(dice, seed)
    reset.click(lambda: [0] * service.N_SLIDERS, None, sliders, api_visibility="private", queue=False)
    for trigger in (tab.select, model.change):
        trigger(slider_setup, model, sliders, api_visibility="private", **MODEL_WORK).then(
            explore, inputs, image, api_visibility="private", preprocess=False, show_progress="minimal",
            **MODEL_WORK).then(
            slider_previews, start, ends, api_visibility="private", preprocess=False, show_progress="hidden",
            **MODEL_WORK)
    model.change(lambda: [0] * service.N_SLIDERS, None, sliders, api_visibility="private", queue=False)
    noted = lambda z, m: (latent_note(z, m), gr.Button(visible=isinstance(z, dict)))
    for trigger in (latent.change, model.change):
        trigger(noted, [latent, model], [note, back], api_visibility="private", queue=False)
    back.click(lambda: None, None, latent, api_visibility="private", queue=False).then(
        explore, inputs, image, api_visibility="private", preprocess=False, show_progress="minimal", **MODEL_WORK)
    return SimpleNamespace(model=model, seed=seed, truncation=truncation, latent=latent, sliders=sliders,
                           ends=ends, image=image, inputs=inputs)
