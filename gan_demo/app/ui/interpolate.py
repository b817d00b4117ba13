"""Interpolate tab: walk through latent space from seed A to seed B."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from .. import service
from .common import (
    MODEL_WORK, PICTURE_BUTTONS, gpu, model_menu, png_file, seed_input, session_of, temp_file, user_errors)

INTRO = ("Every seed is a point in the generator's *latent space*. Walking from seed A's point to seed B's morphs "
         "one picture into the other: **lerp** goes in a straight line, **slerp** follows the sphere where "
         "random points actually lie (usually smoother). Click two images in *Faces* to set A and B.")


@gpu
@user_errors
def interpolate(model, seed_a, seed_b, steps, mode, truncation, request: gr.Request = None):
    """→ the frames as one strip (PNG) and the looping walk as a GIF file."""
    w = service.interpolate(model, seed_a, seed_b, steps, mode, truncation, session=session_of(request))
    return png_file(w.strip), temp_file(w.gif, ".gif")


def build() -> SimpleNamespace:
    with gr.Tab("Interpolate", id="interpolate"):
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
                run = gr.Button("Interpolate", variant="primary")
            with gr.Column(scale=3):
                gif = gr.Image(label="The walk, animated", type="filepath", height=300, buttons=PICTURE_BUTTONS,
                               elem_id="walk-gif")
                strip = gr.Image(label="Frames, left to right", type="filepath", format="png",
                                 buttons=PICTURE_BUTTONS, elem_id="walk-strip")
    gr.on([run.click, seed_a.submit, seed_b.submit], interpolate, [model, seed_a, seed_b, steps, mode, truncation],
          [strip, gif], api_name="interpolate", preprocess=False, **MODEL_WORK)
    return SimpleNamespace(model=model, seed_a=seed_a, seed_b=seed_b, truncation=truncation)
