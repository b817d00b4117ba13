"""Faces tab: a grid of images from consecutive seeds, for any image model."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from .. import service
from .common import (
    BUTTON_WORK, download_name, gpu, model_menu, on_random_seed, png_file, seed_row, session_of, user_errors)

INTRO = ("A GAN's generator turns a random **seed** into a picture. The same seed always gives the same picture; "
         "the grid shows the seeds that follow it. **Truncation** below 1 pulls every seed towards the average "
         "picture: cleaner images, less variety. Click an image to use its seed in *Interpolate* and *Explore*.")


@gpu
@user_errors
def generate(model, seed, count, truncation, request: gr.Request = None):
    """→ gallery of (PNG file, "seed N") and the grid as a PNG file. We encode the PNGs ourselves, at a fast
    compression level, where they are served: half the time of handing gradio the images."""
    batch = service.generate(model, seed, count, truncation, session=session_of(request))
    return ([(png_file(img, name=download_name(model, "seed", s)), f"seed {s}")
             for img, s in zip(batch.images, batch.seeds)],
            png_file(batch.grid, name=download_name(model, "seeds", batch.seeds[0], batch.seeds[-1])))


def first_grid(model, seed, count, truncation):
    """The grid shown when the page opens; with no usable model, a note instead of an error box."""
    try:
        gallery, grid = generate(model, seed, count, truncation)
        return gallery, grid, ""
    except gr.Error:
        statuses = service.model_statuses()
        if all(s.startswith("not available") for n, s in statuses.items() if n in service.image_models()):
            note = "No image model is available yet: the weights folder holds no usable checkpoint (see *Models*)."
        else:
            note = f"{model}: {statuses[model]}"
        return [], None, note


def build() -> SimpleNamespace:
    with gr.Tab("Faces", id="faces"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                model = model_menu("image", elem_id="faces-model")
                seed, dice = seed_row(elem_id="faces-seed")
                count = gr.Slider(1, service.MAX_IMAGES, value=16, step=1, label="Grid size (images)")
                truncation = gr.Slider(*service.TRUNCATION_RANGE, value=1.0, step=0.05, label="Truncation")
                run = gr.Button("Generate", variant="primary")
                download = gr.DownloadButton("Download grid (PNG)", size="md")
                note = gr.Markdown()
            with gr.Column(scale=3):
                # the label above the pictures, not on them; a click picks the seed (no full-size preview
                # to close first: the Download button and the grid file give the full pictures)
                gr.Markdown("Generated images (click one to use its seed)", elem_classes="picture-heading")
                gallery = gr.Gallery(label="Generated images", show_label=False, columns=8, height="auto",
                                     object_fit="contain", format="png", allow_preview=False,
                                     elem_id="faces-gallery")
    inputs, outputs = [model, seed, count, truncation], [gallery, download]
    gr.on([run.click, seed.submit, model.input], generate, inputs, outputs, api_name="generate", preprocess=False,
          **BUTTON_WORK)
    on_random_seed(dice, seed, generate, inputs, outputs)
    return SimpleNamespace(model=model, seed=seed, count=count, truncation=truncation, gallery=gallery,
                           download=download, note=note, first_grid=first_grid,
                           generate=generate)
