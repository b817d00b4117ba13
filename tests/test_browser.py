"""The real page in headless Chromium: it loads, Generate shows images, a click on one feeds Interpolate and
Explore, a slider redraws the picture, and the browser console stays free of errors.

Needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium) and the playwright package; skipped
without them. Playwright's own browser downloads are never used."""
from pathlib import Path

import pytest

import app_process

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def app_url(tiny_weights_dir, tmp_path_factory):
    with app_process.running_app(tiny_weights_dir, tmp_path_factory.mktemp("browser_app") / "app.log") as (_, url, _):
        yield url


@pytest.fixture
def page(app_url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.errors = []
        page.on("console", lambda m: page.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: page.errors.append(f"page error: {e}"))
        page.goto(app_url)
        yield page
        browser.close()


def test_page_generates_picks_and_explores_without_console_errors(page):
    page.wait_for_selector("#faces-gallery img")                       # the first grid arrives by itself
    assert page.locator("#faces-gallery img").count() == 16

    page.locator("#faces-seed input").fill("123")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_function("() => document.querySelector('#faces-gallery').innerText.includes('seed 123')")
    assert page.locator("#faces-gallery img").count() == 16

    # a click on the first image makes seed 123 Interpolate's seed A and Explore's seed
    page.locator("#faces-gallery img").first.click()
    page.wait_for_function("() => document.body.innerText.includes('Seed 123 is now seed A')")
    page.get_by_role("tab", name="Interpolate").click()
    assert page.locator("#seed-a input").input_value() == "123"
    page.wait_for_selector("#walk-gif img")                  # a first walk (seeds 123 → 1), unasked, on opening
    first = page.locator("#walk-gif img").get_attribute("src")
    page.locator("#seed-b input").fill("5")                          # a walk unlike the first (files go by content)
    page.get_by_role("button", name="Interpolate", exact=True).click()
    page.wait_for_function("(src) => document.querySelector('#walk-gif img').src !== src", arg=first)

    page.get_by_role("tab", name="Explore").click()
    assert page.locator("#explore-seed input").input_value() == "123"
    page.wait_for_selector("#explore-image img")
    before = page.locator("#explore-image img").get_attribute("src")
    page.get_by_label("range slider for direction 1").fill("3")     # the picture follows the slider
    page.wait_for_function("(src) => document.querySelector('#explore-image img').src !== src", arg=before)
    page.wait_for_function("() => document.querySelectorAll('.slider-ends img').length == 8")   # both ends, each

    page.get_by_role("tab", name="Digits").click()                    # a first grid of digits, unasked
    page.wait_for_selector("#digits-grid img")
    assert page.errors == [], page.errors


def test_choosing_a_model_redraws_the_grid_and_shows_its_quality_line(page):
    page.wait_for_selector("#faces-gallery img")
    line = page.locator("#faces-model-line")
    assert "celeba64-dcgan" not in line.inner_text() and "non-commercial research use only" in line.inner_text()
    first = page.locator("#faces-gallery img").first.get_attribute("src")
    page.locator("#faces-model input").click()
    page.get_by_role("option", name="mnist-dcgan", exact=True).click()
    page.wait_for_function("(src) => document.querySelector('#faces-gallery img').src !== src", arg=first)
    page.wait_for_function("() => !document.querySelector('#faces-model-line').innerText.includes('CelebA')")
    assert "trained" in line.inner_text() and page.errors == [], page.errors


def test_project_a_drawing_then_explore_and_walk_from_it(page):
    """The Project tab as a visitor uses it: a digit model, a drawing on the sketch pad, Find it, then the found
    latent in Explore and as end B in Interpolate."""
    page.wait_for_selector("#faces-gallery img")
    page.get_by_role("tab", name="Project").click()
    page.locator("#project-model input").click()
    page.locator("#project-model input").fill("mnist-cdcgan")
    page.keyboard.press("Enter")
    page.wait_for_selector("#project-sketch canvas")
    page.wait_for_selector("#project-sketch[data-brush=on]")            # the brush is chosen for the visitor
    box = page.locator("#project-sketch canvas").first.bounding_box()
    at = lambda fx, fy: (box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.mouse.move(*at(0.3, 0.25))
    page.mouse.down()
    page.mouse.move(*at(0.7, 0.25), steps=10)
    page.mouse.move(*at(0.45, 0.8), steps=10)
    page.mouse.up()
    page.get_by_role("button", name="Find it").click()
    page.wait_for_selector("#project-found img", timeout=180_000)
    summary = page.locator("#project-summary").inner_text()
    assert "Mean pixel error" in summary and "Best-fitting class" in summary

    page.get_by_role("button", name="Open in Explore").click()
    page.wait_for_function("() => document.querySelector('#explore-note')?.innerText.includes('your projected')")
    page.wait_for_selector("#explore-image img")

    page.get_by_role("tab", name="Project").click()
    page.get_by_role("button", name="Use as B in Interpolate").click()
    page.wait_for_function("() => document.querySelector('#walk-ends')?.innerText.includes('B: your projected')")
    page.wait_for_selector("#walk-gif img")
    assert page.errors == [], page.errors


def test_every_tab_label_stays_once_in_the_tab_bar_whatever_tab_is_opened(page):
    """Opening a tab must not add a second button for it. (A gr.Timer built inside gr.Tabs but outside its gr.Tab
    made the Models tab's button appear twice once the tab was opened: Gradio numbers a tab by its place among all
    of gr.Tabs' children, and lists the tab bar by its place among the tabs alone.)"""
    tabs = page.get_by_role("tab")
    tabs.first.wait_for()
    labels = [t.inner_text() for t in tabs.all()]
    assert len(labels) >= 8 and len(set(labels)) == len(labels), labels
    settle = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 500))))"
    for label in [*labels[1:], labels[0]]:                  # every tab, the first one last (it opens selected)
        page.locator(f"button[role=tab]:text-is('{label}')").first.click()
        page.wait_for_selector(f"button[role=tab].selected:text-is('{label}')")
        page.evaluate(settle)                               # the tab bar is re-laid out a frame after a tab opens
        assert [t.inner_text() for t in tabs.all()] == labels, f"after opening {label}"
    assert page.errors == [], page.errors


def test_the_train_tab_says_a_run_is_training_while_it_trains(page):
    """The server note under the settings follows the trainer during the page's own run (it kept saying "the
    trainer is free": its timer was never switched on); a blank learning rate shows the default the run took."""
    page.get_by_role("tab", name="Train").click()
    server = page.locator("#train-server")
    assert "the trainer is free" in server.inner_text()
    missing = page.get_by_text("Not offered here")
    if missing.count() and "mnist-gan" in missing.inner_text():
        pytest.skip("no MNIST data for the Train tab")
    page.get_by_label("Learning rate (G and D)").fill("")      # blank: the run takes the default, which shows
    page.locator("#train-start").click()                       # mnist-gan, 300 steps: half a minute or more
    page.wait_for_function("() => document.querySelector('#train-lr input').value === '0.0002'")
    page.wait_for_function("() => document.querySelector('#train-server').innerText.includes('1 run training')")
    page.locator("#train-stop").click()
    page.wait_for_function("() => document.querySelector('#train-status').innerText.includes('Stopped')")
    page.wait_for_function("() => document.querySelector('#train-server').innerText.includes('trainer is free')")
    assert page.errors == [], page.errors


def test_choosing_to_draw_selects_a_digit_model(page):
    """A drawing searched in a face model came back as a face-coloured blob: choosing to draw picks a digit model."""
    page.wait_for_selector("#faces-gallery img")
    page.get_by_role("tab", name="Project").click()
    assert not page.locator("#project-model input").input_value().startswith("mnist")
    page.get_by_label("Draw a digit").check()
    page.wait_for_selector("#project-sketch canvas")
    page.wait_for_function("() => document.querySelector('#project-model input').value.startsWith('mnist')")
    assert page.errors == [], page.errors
