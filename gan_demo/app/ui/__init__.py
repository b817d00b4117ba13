"""The Gradio app: one module per tab (each a thin layer over gan_demo.app.service), wired together here.

`build_app()` returns the Blocks; launch it with `LAUNCH_OPTIONS` (theme and CSS are launch() options in Gradio 6).
A new tab is one more module with a `build()` called inside `gr.Tabs()` below. The Train tab's runs belong to the
browser session that started them: when one ends, the other tabs' menus offer it as "my run"; when the tab is
closed (`demo.unload`), its run stops and its files go.
"""
from __future__ import annotations

import re

import gradio as gr

from . import digits, explore, faces, interpolate, models, project, text, train
from .common import MODEL_WORK, clean_private_leftovers, explain_choice, refreshed_menu

TITLE = "gan_demo — hands-on GANs"
HEADER = ("# gan_demo: hands-on GANs\n"
          "Generative adversarial networks trained with this project's own code: faces (CelebA), small photos "
          "(CIFAR-10), handwritten digits (MNIST) and English sentences. Everything is reproducible: a seed always "
          "gives the same output.")
CSS = """
.dice { align-self: end; margin-bottom: 8px; }
/* a 64-pixel walk or picture would otherwise stay 64 pixels wide in a large box */
#walk-gif img, #explore-image img { width: 100%; height: 100%; object-fit: contain; }
#walk-strip img { width: 100% !important; height: auto !important; }
/* the strip is one short row: its floating label and buttons get a band of their own instead of covering frames */
#walk-strip .image-container { padding-top: 36px; }
/* seed captions below each thumbnail, not over a third of a 28-pixel digit */
#faces-gallery .thumbnail-item { display: flex; flex-direction: column; aspect-ratio: auto; height: auto;
                                 overflow: visible; }
#faces-gallery .thumbnail-item img { aspect-ratio: 1; width: 100%; height: auto; image-rendering: pixelated; }
#faces-gallery .caption-label { position: static; transform: none; max-width: 100%; padding: 2px 0 0 0;
                                background: none; color: var(--body-text-color-subdued); font-size: var(--text-sm);
                                text-align: center; border: none; }
#faces-gallery .thumbnail-item.selected .caption-label { color: var(--body-text-color); font-weight: 600; }
.picture-heading p { margin: 0 0 4px 0; font-weight: 600; }
.model-line p { margin: 0 4px; font-size: var(--text-sm); color: var(--body-text-color-subdued); }
/* a card's headings and values whole ("value", "84.6%", not "valu" / "e"): cells break only between words, so a
   long value (a metric's protocol sentence) wraps like the explanations instead of pushing them out of view */
#model-card th, #model-card td { word-break: normal; overflow-wrap: normal; }
#model-card th, #model-card td:first-child { white-space: nowrap; }
#model-card td:nth-child(2) { min-width: 6em; }
""" + train.CSS + project.CSS
LAUNCH_OPTIONS = dict(theme=gr.themes.Soft(), css=CSS, show_error=True)
QUEUE_SIZE = 64             # requests waiting beyond this are turned away instead of piling up


def _seed_from_caption(value) -> int | None:
    caption = value.get("caption") if isinstance(value, dict) else None
    m = re.fullmatch(r"seed (\d+)", caption or "")
    return int(m.group(1)) if m else None


def _wire_gallery_picks(f, i, e) -> None:
    """A click on a Faces image sends its seed to Interpolate (A, then B, alternately) and to Explore."""
    next_is_b = gr.State(False)

    def pick(evt: gr.SelectData, to_b, model, truncation):
        s = _seed_from_caption(evt.value)
        if s is None:
            return [gr.skip()] * 9
        which = "B" if to_b else "A"
        note = (f"Seed {s} is now seed {which} in *Interpolate* and the seed in *Explore*; the next click sets seed "
                f"{'A' if to_b else 'B'}.")
        return (gr.skip() if to_b else s, s if to_b else gr.skip(), s, model, model, truncation, truncation,
                not to_b, note)

    f.gallery.select(pick, [next_is_b, f.model, f.truncation],
                     [i.seed_a, i.seed_b, e.seed, i.model, e.model, i.truncation, e.truncation, next_is_b, f.note],
                     api_visibility="private", queue=False)


def _wire_projection(tabs, p, i, e) -> None:
    """A latent found in Project opens in Explore (its model selected, sliders at zero; selecting the tab draws it,
    as Explore's Tab.select also fires when a handler selects it) or becomes end A or B of the walk in Interpolate,
    which then runs."""
    def open_in_explore(latent):
        return latent, latent["model"], *[0] * len(e.sliders), gr.Tabs(selected="explore")

    p.to_explore.click(open_in_explore, p.latent, [e.latent, e.model, *e.sliders, tabs],
                       api_visibility="private", queue=False)
    for button, end in ((p.to_a, i.latent_a), (p.to_b, i.latent_b)):
        button.click(lambda latent: (latent, latent["model"], gr.Tabs(selected="interpolate")), p.latent,
                     [end, i.model, tabs], api_visibility="private", queue=False).then(
            i.interpolate, i.inputs, i.outputs, api_visibility="private", preprocess=False, **MODEL_WORK)


def _wire_page_load(demo, f, i, e, d, t, p) -> None:
    """On each visit: menus show which checkpoints are usable, the best model is selected, a first grid of faces,
    first sentences and a first grid of digits appear (Interpolate makes its first walk when it is opened)."""
    def menus():
        image = refreshed_menu("image")
        return (image, image, image, refreshed_menu("conditional"), refreshed_menu("text"), image,
                *text.availability())

    menus_out = [f.model, i.model, e.model, d.model, t.model, p.model, t.run, t.unavailable]
    demo.load(menus, None, menus_out, api_visibility="private").then(
        f.first_grid, [f.model, f.seed, f.count, f.truncation], [f.gallery, f.download, f.note],
        preprocess=False, api_visibility="private", **MODEL_WORK).then(
        t.first_sentences, t.inputs, [t.table, t.summary], preprocess=False, api_visibility="private", **MODEL_WORK).then(
        d.first_grid, d.inputs, d.outputs, preprocess=False, api_visibility="private", **MODEL_WORK)


def _wire_my_runs(demo, tr, f, i, e, d, t, p) -> None:
    """A run that ends becomes "my run" in the other tabs' menus (this session only), and Faces shows its grid; a
    closed tab ends its run."""
    tr.finished.then(tr.my_run_menus, None, [f.model, i.model, e.model, d.model, t.model, p.model, f.note],
                     api_visibility="private").then(
        f.generate, [f.model, f.seed, f.count, f.truncation], [f.gallery, f.download],
        preprocess=False, api_visibility="private", **MODEL_WORK)
    demo.unload(tr.end_session)


def build_app() -> gr.Blocks:
    clean_private_leftovers()           # what killed servers left in gradio's cache (see common.PRIVATE)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(HEADER)
        with gr.Tabs() as tabs:
            f = faces.build()
            i = interpolate.build()
            e = explore.build()
            p = project.build()
            d = digits.build()
            t = text.build()
            tr = train.build()
            models.build()
        _wire_gallery_picks(f, i, e)
        _wire_projection(tabs, p, i, e)
        _wire_page_load(demo, f, i, e, d, t, p)
        _wire_my_runs(demo, tr, f, i, e, d, t, p)
        for menu in (f.model, i.model, e.model, d.model, t.model, p.model):
            menu.input(explain_choice, menu, None, api_visibility="private", queue=False)
    demo.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE)
    return demo


__all__ = ["LAUNCH_OPTIONS", "build_app"]
