"""Digits tab: ask a conditional GAN for particular digits."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from .. import service
from .common import (
    BUTTON_WORK, PICTURE_BUTTONS, download_name, gpu, model_menu, on_random_seed, png_file, seed_row, session_of,
    user_errors)

INTRO = ("A *conditional* GAN is told which digit to draw as well as given a seed. Each row below is one digit "
         "and each column one seed: along a column the seed, and with it the handwriting style, stays the same "
         "while the digit changes.")


@gpu
@user_errors
def digits(model, chosen, seed, count, all_digits, request: gr.Request = None):
    """→ the grid (rows: digits, columns: seeds) as a PNG file, and a line naming its rows and columns."""
    grid = service.digits(model, chosen, seed, count, all_digits, session=session_of(request))
    return (png_file(grid.image, name=download_name(model, "digits", *grid.digits, "seeds", grid.seeds[0],
                                                    grid.seeds[-1])),
            f"Rows, top to bottom: digits {', '.join(map(str, grid.digits))}. Columns: {seed_span(grid.seeds)}.")


def seed_span(seeds: list[int]) -> str:
    """'seeds 5 … 9'; a run that wrapped past the largest seed (service.seed_run) says so."""
    span = lambda a, b: f"{a}" if a == b else f"{a} … {b}"      # noqa: E731
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds[-1] < seeds[0]:
        return f"seeds {span(seeds[0], service.MAX_SEED)}, then {span(0, seeds[-1])}"
    return f"seeds {span(seeds[0], seeds[-1])}"


def first_grid(model, chosen, seed, count, all_digits):
    """The grid shown when the page opens; none (and no error box) while no conditional model can load."""
    try:
        return digits(model, chosen, seed, count, all_digits)
    except gr.Error:
        return None, ""


def build() -> SimpleNamespace:
    with gr.Tab("Digits", id="digits"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                model = model_menu("conditional")
                chosen = gr.CheckboxGroup([(str(d), d) for d in range(10)], value=[0, 1, 2, 3], label="Digits")
                all_digits = gr.Checkbox(False, label="All ten digits (a 10 × N grid)")
                seed, dice = seed_row("First seed")
                count = gr.Slider(1, service.MAX_DIGIT_COLUMNS, value=8, step=1, label="Seeds per digit (N)")
                run = gr.Button("Draw digits", variant="primary")
            with gr.Column(scale=3):
                gr.Markdown("Rows: digits · columns: seeds", elem_classes="picture-heading")
                grid = gr.Image(label="Rows: digits · columns: seeds", show_label=False, type="filepath",
                                format="png", buttons=PICTURE_BUTTONS, elem_id="digits-grid")
                caption = gr.Markdown()
    inputs, outputs = [model, chosen, seed, count, all_digits], [grid, caption]
    gr.on([run.click, seed.submit, model.input], digits, inputs, outputs, api_name="digits", preprocess=False,
          **BUTTON_WORK)
    on_random_seed(dice, seed, digits, inputs, outputs)
    return SimpleNamespace(model=model, inputs=inputs, outputs=outputs, first_grid=first_grid)
