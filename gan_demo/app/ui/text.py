"""Text tab: sentences from the character-level text GAN, checked against its training sentences."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from .. import service
from .common import BUTTON_WORK, gpu, model_menu, on_random_seed, seed_row, session_of, user_errors

INTRO = ("The text GAN writes a whole sentence at once: for each of 64 character positions it outputs how likely "
         "every character is. **Likeliest** takes the most likely character everywhere; **temperature** samples "
         "instead (higher = more adventurous spelling). The last column says whether a sentence is a verbatim "
         "copy of one the model was trained on, rather than a new one.")

SAMPLING = [("Likeliest character (argmax)", "argmax"), ("Sample at a temperature", "temperature")]
HEADERS = ["seed", "sentence", "copied from training data"]


@gpu
@user_errors
def sentences(model, seed, count, sampling, temperature, request: gr.Request = None):
    """→ a table (seed, sentence, copied?) and a one-line summary of the copies."""
    if sampling not in ("argmax", "temperature"):
        raise ValueError(f"sampling must be 'argmax' or 'temperature', got {service.quoted(sampling)}")
    result = service.text(model, seed, count, temperature if sampling == "temperature" else None,
                          session=session_of(request))
    yes_no = {True: "yes", False: "no", None: "unknown"}
    rows = [[s, line or "(empty sentence)", yes_no[copied]] for s, line, copied in result.rows]
    return rows, result.summary


def first_sentences(model, seed, count, sampling, temperature):
    """The sentences shown when the page opens; none (and no error box) while no text model can load."""
    try:
        return sentences(model, seed, count, sampling, temperature)
    except gr.Error:
        return [], ""


def build() -> SimpleNamespace:
    with gr.Tab("Text", id="text"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                model = model_menu("text")
                seed, dice = seed_row("First seed")
                count = gr.Slider(1, service.MAX_SENTENCES, value=10, step=1, label="Sentences")
                sampling = gr.Radio(SAMPLING, value="argmax", label="Sampling")
                temperature = gr.Slider(*service.TEMPERATURE_RANGE, value=1.0, step=0.05, label="Temperature",
                                        info="used when sampling at a temperature")
                run = gr.Button("Write sentences", variant="primary")
                unavailable = gr.Markdown(elem_id="text-unavailable")
            with gr.Column(scale=3):
                table = gr.Dataframe(headers=HEADERS, datatype=["number", "str", "str"], wrap=True,
                                     interactive=False, column_widths=["12%", "68%", "20%"], label="Sentences",
                                     elem_id="text-table")
                summary = gr.Markdown()
    inputs = [model, seed, count, sampling, temperature]
    gr.on([run.click, seed.submit, model.input], sentences, inputs, [table, summary], api_name="text", preprocess=False,
          **BUTTON_WORK)
    on_random_seed(dice, seed, sentences, inputs, [table, summary])
    return SimpleNamespace(model=model, run=run, unavailable=unavailable, inputs=inputs, table=table, summary=summary,
                           first_sentences=first_sentences)


def availability():
    """The button works only while a text model can load; otherwise it is disabled and the reason shown."""
    statuses = {n: service.STORE.status(n) for n in service.text_models()}
    if any(not s.startswith("not available") for s in statuses.values()):
        return gr.Button(interactive=True), ""
    why = "; ".join(f"{n}: {s.removeprefix('not available: ')}" for n, s in statuses.items())
    return gr.Button(interactive=False), f"**No text model is available on this server** ({why}), so there is " \
                                         f"nothing to write with yet."
