"""Models tab: every model's status at a glance, and its card — what it is, how it was trained, how good it is."""
from __future__ import annotations

import re

import gradio as gr

from .. import service
from ...registry import REGISTRY
from .charts import loss_figure
from .common import PICTURE_BUTTONS, copy_file, model_choices, temp_file, user_errors

INTRO = ("What each model is, how it was trained and how well it does; click a row to see its card. The loss "
         "curves show generator and discriminator pulling against each other; the animation shows the same seeds "
         "improving during training. **FID/KID**: distance from real images (lower is better); **classifier "
         "accuracy**: how often a digit classifier agrees with the requested digit; **n-gram divergence**: how far "
         "the sentences' letter statistics are from real ones (lower is better). An FID of 2,000 samples reads higher "
         "than one of 10,000: compare like with like. Hover over the loss chart for the "
         "values at a step; drag to zoom, double-click to zoom out.")
TABLE_HEADERS = ["model", "data", "family", "quality", "trained", "status"]


def _nested(markdown: str) -> str:
    """Cards are written as documents ('# name'); under the tab's own headings they drop two levels."""
    return re.sub(r"^(#{1,4}) ", r"##\1 ", markdown, flags=re.M)


def loss_chart(history, shipped_step: int | None = None):
    """A shipped loss history (gan_demo.loss_history.LossHistory) → the interactive loss chart; a dashed line
    marks the step of the shipped weights when training went on past it (a campaign ships its best snapshot)."""
    title = "Losses during training"
    if history.bucket_steps > 1:
        title += (f" <span style='font-size:11px;color:#6b7280'>(each point: the mean over "
                  f"{history.bucket_steps:,} steps)</span>")
    fig = loss_figure(history.rows(), title=title, placeholder="No losses were logged")
    if shipped_step is not None and history.step and shipped_step < history.step[-1]:
        fig.add_vline(x=shipped_step, line=dict(color="#6b7280", dash="dash", width=1),
                      annotation_text=f"shipped: step {shipped_step:,}", annotation_position="top left")
    return fig


@user_errors
def card(name):
    """→ the model's card (Markdown); its losses during training: an interactive chart (a plotly figure) from
    <name>-losses.json, or where the model ships none (older exports), the loss-curve picture <name>-losses.png;
    and its training animation. Files are servable copies; None where not shipped."""
    info = service.model_info(name)
    history = service.loss_history(info)
    chart = loss_chart(history, info.shipped_step) if history is not None else None
    losses = copy_file(info.losses) if chart is None else None
    progress = temp_file(service.training_animation(info.progress), ".gif") if info.progress else None
    return _nested(info.markdown), chart, losses, progress


def shown_if_present(chart, losses, progress):
    """An empty box says nothing: hide the ones this model does not ship (the chart, or else the picture), each
    picture with its heading."""
    return (gr.Plot(visible=chart is not None), gr.Column(visible=losses is not None),
            gr.Column(visible=progress is not None))


def statuses():
    """→ one row per model: name, data, family, its headline quality, how it was trained, and its status ('ready'
    or 'not available: <reason>'); loads each model once, so a broken file shows its reason here."""
    return [[n, REGISTRY[n].dataset, REGISTRY[n].family, quality, trained, status]
            for n, status, quality, trained in service.model_overview()]


def picked_row(evt: gr.SelectData):
    """Clicking anywhere in a row shows that row's model."""
    row = evt.row_value or []
    return row[0] if row and row[0] in REGISTRY else gr.skip()


def build() -> None:
    with gr.Tab("Models", id="models") as tab:
        gr.Markdown(INTRO)
        table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, wrap=True, label="All models",
                             column_widths=["15%", "9%", "8%", "30%", "28%", "10%"], elem_id="models-table")
        with gr.Row():
            with gr.Column(scale=2):
                name = gr.Dropdown(model_choices(list(REGISTRY)), value=_first_available(), label="Model")
                markdown = gr.Markdown(elem_id="model-card")
            with gr.Column(scale=1):
                chart = gr.Plot(label="Losses during training", show_label=False, visible=False,
                                elem_id="model-losses")
                # headings above the pictures, not over them; interactive=False: pictures to look at (an event's
                # input would otherwise take uploads)
                with gr.Column(visible=False) as losses_box:
                    gr.Markdown("Losses during training", elem_classes="picture-heading")
                    losses = gr.Image(label="Losses during training", show_label=False, type="filepath",
                                      buttons=PICTURE_BUTTONS, interactive=False)
                with gr.Column(visible=False) as progress_box:
                    gr.Markdown("Fixed seeds during training", elem_classes="picture-heading")
                    progress = gr.Image(label="Fixed seeds during training", show_label=False, type="filepath",
                                        buttons=PICTURE_BUTTONS, interactive=False)
    card_outputs, pictures, boxes = [markdown, chart, losses, progress], [chart, losses, progress], \
        [chart, losses_box, progress_box]
    tab.select(statuses, None, table, api_name="models").then(
        card, name, card_outputs, preprocess=False, api_visibility="private").then(
        shown_if_present, pictures, boxes, api_visibility="private", queue=False)
    name.change(card, name, card_outputs, api_name="model_card", preprocess=False).then(
        shown_if_present, pictures, boxes, api_visibility="private", queue=False)
    table.select(picked_row, None, name, api_visibility="private")


def _first_available() -> str:
    """Open on a card with content: the first registry model whose checkpoint is there."""
    return next((n for n in REGISTRY if not service.STORE.status(n).startswith("not available")),
                service.image_models()[0])
