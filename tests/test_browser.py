"""The page in a real browser: Debian's Chromium, headless, driven by Playwright.

Screenshots of every view at two window sizes (1366×768 and a 390-pixel phone) are saved to
tests/artifacts/ (ignored by git) for a person to look at; the time the overview took to draw is
written to tests/artifacts/page-timings.json (recorded, never asserted: machines are noisy)."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convnet import checkpoint, inspector
from convnet.cli import main
from convnet.network import Network
from convnet.spec import parse
from serving import running_server

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]
ARTIFACTS = Path(__file__).parent / "artifacts"
SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
RESIDUAL = ("17x17x3 conv(8,3,pad=1) relu residual(conv(8,3,pad=1) relu conv(8,3,pad=1)) relu "
            "residual(conv(12,3,stride=2,pad=1) relu conv(12,3,pad=1), "
            "shortcut=conv(12,1,stride=2)) relu globalavgpool fc(4)")


@pytest.fixture(scope="module")
def model(served_model):
    return served_model


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: scripts/setup.sh installs it"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield browser
        browser.close()


def open_page(browser, url: str, size: str = "desktop", wait: bool = True):
    """A page (its CSP bypassed only so that wait_for_function may evaluate text; the CSP
    itself is tested below), with its errors collected in page.errors."""
    page = browser.new_page(viewport=SIZES[size], bypass_csp=True)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" and
            "status of 4" not in m.text and "status of 5" not in m.text else None)
    page.goto(url + "/")
    if wait:
        drawn(page, 1)
    return page


def drawn(page, count: int) -> None:
    page.wait_for_function(f"window.convnetTimings && window.convnetTimings.drawn >= {count}",
                           timeout=60_000)


def record_timing(name: str, page) -> None:
    where = ARTIFACTS / "page-timings.json"
    timings = json.loads(where.read_text()) if where.is_file() else {}
    timings[name] = page.evaluate("window.convnetTimings.overview_ms")
    where.write_text(json.dumps(timings, indent=1))


def columns(page) -> list[str]:
    return page.eval_on_selector_all("#overview .column", "c => c.map(x => x.dataset.layer)")


def hover_cell(page, layer: str, map_index: int, fraction=(0.4, 0.6)) -> str:
    """Hover over a cell of a map; the page says which cell it follows."""
    canvas = page.locator(f'#overview [data-layer="{layer}"] .map canvas').nth(map_index)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * fraction[0], box["y"] + box["height"] * fraction[1])
    page.wait_for_function(f"(document.querySelector('#cell-body').dataset.where || '')"
                           f".startsWith('{layer},')")
    page.wait_for_selector("#cell-body pre", state="attached")
    return page.locator("#cell-body").get_attribute("data-where")


def show_cell_lines(capsys, model, image: str, where: str, tmp_path) -> list[str]:
    assert main(["show", str(model), image, "--out", str(tmp_path / "s.png"),
                 "--cell", where]) == 0
    return capsys.readouterr().out.splitlines()[1:]


# -- the overview and following one number ---------------------------------------------------

def test_the_overview_draws_every_layer_of_a_lenet(browser, model, fashion_dir):
    with running_server(model, fashion_dir) as url:
        for size in SIZES:
            page = open_page(browser, url, size)
            assert columns(page) == ["input"] + [str(i) for i in range(9)]
            for layer, maps in (("0", 6), ("3", 8)):  # every map of a layer with ≤ 10
                assert page.locator(f'[data-layer="{layer}"] .map canvas').count() == maps
            names = page.locator('[data-layer="8"] .labelled .name').all_text_contents()
            assert len(names) == 10 and names[0] == "T-shirt/top"  # softmax, with its classes
            assert page.locator(".bar .name").count() == 5
            assert "conv(6,5)" in page.locator("#model").text_content()
            # one scale for every layer: a smaller map is never drawn larger
            heights = [page.locator(f'[data-layer="{n}"] .map canvas').first.bounding_box()
                       ["height"] for n in ("0", "2", "3", "5")]
            assert heights == sorted(heights, reverse=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= SIZES[size]["width"]  # nothing overflows sideways
            record_timing(f"lenet-{size}", page)
            hover_cell(page, "0", 2)
            page.screenshot(path=str(ARTIFACTS / f"page-overview-{size}.png"))
            page.screenshot(path=str(ARTIFACTS / f"page-overview-{size}-full.png"),
                            full_page=True)
            assert page.errors == []
            page.close()


@pytest.mark.parametrize("layer, map_index", [("0", 2), ("1", 4), ("2", 1), ("3", 5)])
def test_hovering_a_cell_shows_what_show_cell_prints(browser, model, fashion_dir, capsys,
                                                    tmp_path, layer, map_index):
    with running_server(model, fashion_dir) as url:
        page = open_page(browser, url)  # the page starts on test image 0
        where = hover_cell(page, layer, map_index)
        shown = page.locator("#cell-body pre").text_content().splitlines()
        assert shown == show_cell_lines(capsys, model, "test:0", where, tmp_path)
        if layer in ("0", "3"):
            assert any(line.strip().startswith("W·x + b =") for line in shown)
            assert any(line.strip().startswith("ReLU(W·x + b)") for line in shown)
            # the window is highlighted in the layer before, the receptive field on the input
            assert page.locator("#overview .box:not(.cellbox)").count() >= 1
            assert page.locator("#cell-body table.grid").count() >= 3  # x, W, W·x as grids
        page.close()


def test_clicking_an_fc_unit_holds_it_and_shows_the_weight_row(browser, model, fashion_dir,
                                                               capsys, tmp_path):
    with running_server(model, fashion_dir) as url:
        page = open_page(browser, url)
        page.locator('[data-layer="7"] .labelled .name').nth(3).click()
        page.wait_for_function("document.querySelector('#cell-body').dataset.where === '7,0,0,3'")
        shown = page.locator("#cell-body pre").text_content().splitlines()
        assert shown == show_cell_lines(capsys, model, "test:0", "7,0,0,3", tmp_path)
        assert page.locator("#cell-body .strips canvas").count() == 3  # x, W, W·x
        page.close()


def test_a_residual_network_draws_both_paths_and_the_addition(browser, fashion_dir):
    net = Network(RESIDUAL.split(" ", 1)[1], input=(17, 17, 3), seed=0)
    expected = ["input"] + [row.name for top in net.shapes for row in top.walk()]
    with running_server(RESIDUAL, fashion_dir) as url:
        for size in SIZES:
            page = open_page(browser, url, size)
            assert sorted(columns(page)) == sorted(expected)
            assert page.locator(".block").count() == 2
            shortcut = page.locator('.block[data-block="4"] [data-layer="4.shortcut.0"]')
            assert shortcut.count() == 1  # the projection drawn on its own lane
            assert page.locator('.block[data-block="2"] .identity').count() == 1  # + x
            hover_cell(page, "4", 0)
            assert "F(x) + S(x)" in page.locator("#cell-body pre").text_content()
            hover_cell(page, "2", 1)
            assert "F(x) + x" in page.locator("#cell-body pre").text_content()
            page.screenshot(path=str(ARTIFACTS / f"page-residual-{size}.png"))
            assert page.errors == []
            page.close()


@pytest.mark.parametrize("name", ["resnet20", "lenet5"])
def test_the_case_study_networks_draw(browser, fashion_dir, name):
    from convnet import spec as spec_module

    with running_server(name, fashion_dir) as url:
        page = open_page(browser, url)
        network = spec_module.load(name)
        net = Network(network.without_input(), input=network.input, seed=0)
        assert len(columns(page)) == 1 + sum(1 for top in net.shapes for _ in top.walk())
        hover_cell(page, "0", 0)
        record_timing(name, page)
        assert page.errors == []
        page.close()


# -- the animation, softmax and training views -----------------------------------------------

def test_the_animation_steps_to_the_inspectors_output_size(browser, model, fashion_dir):
    descriptions = {"stride1": "conv(1,3)", "stride2": "conv(1,3,stride=2)",
                    "pad1": "conv(1,3,pad=1)", "maxpool": "pool(2)"}
    with running_server(model, fashion_dir) as url:
        for size in SIZES:
            page = open_page(browser, url, size)
            page.click("#tab-animation")
            for name, description in descriptions.items():
                page.click(f'#anim-choices [data-name="{name}"]')
                page.wait_for_function(f"document.querySelector('#anim-choices "
                                       f"[data-name=\"{name}\"]').getAttribute('aria-checked')"
                                       f" === 'true'")
                side = 4 if name == "maxpool" else 7
                out = inspector.as_json(parse(description), (side, side, 1))["layers"][0]
                expected = out["output"][0] * out["output"][1]
                # the choice is marked at once; its steps come with the server's answer
                page.wait_for_function(f"document.querySelector('#anim-counter').dataset.steps"
                                       f" === '{expected}'", timeout=20_000)
                steps = int(page.locator("#anim-counter").get_attribute("data-steps"))
                assert steps == out["output"][0] * out["output"][1]
            page.click('#anim-choices [data-name="stride3"]')
            page.wait_for_selector("#anim-error:not([hidden])")
            assert "Fix: stride=1 (→ 5x5)" in page.locator("#anim-error").text_content()
            page.click("#anim-step")
            page.click("#anim-step")
            assert "3" in page.locator("#anim-counter").text_content()
            page.screenshot(path=str(ARTIFACTS / f"page-animation-stride3-{size}.png"))
            # the playground: any sizes, answered once the typing pauses, whole numbers only
            for field, value in (("#pH", "9"), ("#pW", "5"), ("#pF", "3"), ("#pS", "2"),
                                 ("#pP", "1")):
                page.fill(field, value)
            page.wait_for_function("document.querySelector('#anim-counter').dataset.steps "
                                   "=== '15'")  # (9 − 3 + 2)/2 + 1 = 5 by (5 − 3 + 2)/2 + 1 = 3
            page.fill("#pS", "1e3")
            page.wait_for_function("document.querySelector('#playground-note').textContent"
                                   ".includes('whole numbers')")
            page.fill("#pS", "3")
            page.wait_for_selector("#anim-error:not([hidden])")
            assert "Fix:" in page.locator("#anim-error").text_content()
            page.click('#anim-choices [data-name="pad1"]')
            page.fill("#anim-speed", "60")
            page.click("#anim-play")
            page.wait_for_function("document.querySelector('#anim-counter').textContent"
                                   ".startsWith('step 49 of 49')", timeout=20_000)
            page.click('#anim-choices [data-name="model"]')
            page.wait_for_function("document.querySelector('#anim-counter').dataset.steps "
                                   "=== '576'")  # 24×24, the first layer's output
            page.screenshot(path=str(ARTIFACTS / f"page-animation-{size}.png"))
            page.click("#tab-softmax")
            page.wait_for_selector("#softmax table")
            assert page.locator("#softmax tr").count() == 11  # a header and ten classes
            page.screenshot(path=str(ARTIFACTS / f"page-softmax-{size}.png"))
            page.click("#tab-training")
            page.wait_for_selector("#filters canvas")
            assert page.locator("#filters canvas").count() == 6
            page.screenshot(path=str(ARTIFACTS / f"page-training-{size}.png"))
            assert page.errors == []
            page.close()


def test_the_language_toggle_changes_every_label(browser, model, fashion_dir):
    with running_server(model, fashion_dir) as url:
        page = open_page(browser, url)
        english = page.eval_on_selector_all("[data-t]", "n => n.map(x => x.textContent)")
        labels = page.eval_on_selector_all("[data-t-label]", "n => n.map(x => x.ariaLabel)")
        title = page.locator('[data-layer="0"] .head span').get_attribute("title")
        page.click("#lang")
        page.wait_for_function("document.documentElement.lang === 'ko'")
        page.wait_for_function("document.querySelector('[data-layer=\"0\"] .head span')"
                               ".title.includes('가중치')")
        korean = page.eval_on_selector_all("[data-t]", "n => n.map(x => x.textContent)")
        assert all(a != b and re.search("[가-힣]", b) for a, b in zip(english, korean)), \
            [(a, b) for a, b in zip(english, korean) if a == b]
        assert page.eval_on_selector_all("[data-t-label]", "n => n.map(x => x.ariaLabel)") \
            != labels
        assert page.locator('[data-layer="0"] .head span').get_attribute("title") != title
        hover_cell(page, "0", 1)
        assert "필터" in page.locator("#cell-body").text_content()
        for size in SIZES:
            page.set_viewport_size(SIZES[size])
            page.screenshot(path=str(ARTIFACTS / f"page-korean-{size}.png"))
        page.click("#lang")  # and back
        page.wait_for_function("document.documentElement.lang === 'en'")
        assert page.eval_on_selector_all("[data-t]", "n => n.map(x => x.textContent)") == english
        assert page.errors == []
        page.close()


def tab_to(page, selector: str, limit: int = 80) -> int:
    """Press Tab until the focused element matches; how many presses it took."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({json.dumps(selector)})"):
            return presses
    raise AssertionError(f"Tab never reached {selector}")


def held_up(page, held: list, what: str) -> None:
    """Wait (15 s at most) until a route handler has held the page's question back in `held`."""
    for _ in range(300):
        if held:
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"the page never asked for {what}")


def test_steps_pressed_while_the_animation_loads_count(browser, model, fashion_dir):
    """A user who presses "step" before the animation's answer arrives (a slow server, a busy
    machine) sees it open at that step, not at the first with the presses lost."""
    held = []

    def hold_the_animation(route):
        if not held:
            held.append(route)  # answered below, after the presses
        else:
            route.continue_()
    # (each phase below empties `held`, so that the next question is held too)

    with running_server(model, fashion_dir) as url:
        page = open_page(browser, url)
        page.route("**/api/animation?**", hold_the_animation)
        page.click("#tab-animation")  # the view asks for its animation as it opens
        held_up(page, held, "the animation")
        page.click("#anim-step")
        page.click("#anim-step")
        held[0].continue_()
        page.wait_for_function("document.querySelector('#anim-counter').textContent"
                               ".startsWith('step 3')")
        page.click("#anim-back")
        assert page.locator("#anim-counter").text_content().startswith("step 2")
        # play pressed while another animation loads: it plays once that one comes
        held.clear()
        page.fill("#anim-speed", "60")
        page.click('#anim-choices [data-name="pad1"]')
        held_up(page, held, "the second animation")
        page.click("#anim-play")
        assert "pause" in page.locator("#anim-play").text_content()  # it says it will
        held[0].continue_()
        page.wait_for_function("document.querySelector('#anim-counter').textContent"
                               ".startsWith('step 49')")  # pad1 on 7×7: 49 steps, played through
        page.wait_for_function("document.querySelector('#anim-play').textContent.includes('play')")
        assert page.errors == []
        page.close()


def test_an_image_picked_while_the_first_one_loads_stays(browser, model, fashion_dir):
    """The page shows test image 0 by itself; a user who picks another image before image 0's
    bytes arrive keeps theirs — the late first image neither replaces it nor is asked about."""
    held = []

    def hold_the_first_image(route):
        request = route.request
        if (not held and request.resource_type == "fetch"
                and request.url.split("?")[0].endswith("/api/examples/0")):
            held.append(route)  # answered below, after the user's choice
        else:
            route.continue_()

    with running_server(model, fashion_dir) as url:
        page = browser.new_page(viewport=SIZES["desktop"], bypass_csp=True)
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        asked = []
        page.on("request", lambda r: asked.append(r.url) if "/api/activations" in r.url else None)
        page.route("**/api/examples/**", hold_the_first_image)
        page.goto(url + "/")
        held_up(page, held, "its first image")
        page.click('#examples button[data-index="2"]')
        page.wait_for_selector('#examples button[data-index="2"][aria-pressed="true"]')
        drawn(page, 1)
        with page.expect_event("requestfinished", lambda r: r.url.split("?")[0]
                               .endswith("/api/examples/0") and r.resource_type == "fetch"):
            held[0].continue_()
        page.wait_for_timeout(300)  # room for a wrong answer to be asked and drawn
        assert len(asked) == 1, asked
        assert page.get_attribute('#examples button[data-index="2"]', "aria-pressed") == "true"
        assert page.get_attribute('#examples button[data-index="0"]', "aria-pressed") == "false"
        assert page.evaluate("window.convnetTimings.drawn") == 1
        assert page.errors == []
        page.close()


def test_the_page_works_with_the_keyboard_alone(browser, model, fashion_dir):
    with running_server(model, fashion_dir) as url:
        page = open_page(browser, url)
        tab_to(page, "#examples button")  # the strip is one Tab stop; arrows move in it
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.dataset.index") == "2"
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"  # the focus is visible
        page.keyboard.press("Enter")
        page.wait_for_selector('#examples button[data-index="2"][aria-pressed="true"]')
        drawn(page, 2)
        tab_to(page, '[data-layer="0"]')
        assert page.evaluate("getComputedStyle(document.activeElement).borderTopColor") != \
            "rgba(0, 0, 0, 0)"
        for key in ("ArrowRight", "ArrowRight", "ArrowRight", "ArrowDown", "ArrowDown",
                    "PageDown"):
            page.keyboard.press(key)
        page.wait_for_function("document.querySelector('#cell-body').dataset.where === "
                               "'0,2,3,1'")
        page.keyboard.press("Enter")  # held
        page.wait_for_function("document.querySelector('#cell-body .title').textContent"
                               ".includes('held')")
        tab_to(page, '[data-layer="2"]')
        page.keyboard.press("ArrowDown")
        page.wait_for_function("document.querySelector('#cell-body').dataset.where"
                               ".startsWith('2,')")
        page.keyboard.press("Escape")
        # the views by keyboard: the tab list takes arrows
        page.focus("#tab-overview")
        page.keyboard.press("ArrowRight")
        assert page.locator("#view-animation").is_visible()
        tab_to(page, "#anim-step")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#anim-counter').textContent"
                               ".startsWith('step 2')")
        assert page.errors == []
        page.close()


def test_drawing_an_image(browser, model, fashion_dir):
    with running_server(model, fashion_dir) as url:
        page = open_page(browser, url)
        page.click("#draw-toggle")
        box = page.locator("#draw").bounding_box()
        page.mouse.move(box["x"] + 60, box["y"] + 40)
        page.mouse.down()
        page.mouse.move(box["x"] + 110, box["y"] + 170, steps=12)
        page.mouse.move(box["x"] + 160, box["y"] + 50, steps=12)
        page.mouse.up()
        drawn(page, 2)
        assert "196×196" in page.locator("#resized").text_content()  # resized, and says so
        assert len(columns(page)) == 10
        page.close()


# -- bad input -------------------------------------------------------------------------------

def bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bad_files_say_why_on_the_page_and_the_server_answers_on(browser, model, fashion_dir,
                                                                 tmp_path):
    good = io.BytesIO()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(good, format="PNG")
    files = {"notes.txt": (b"not an image", "not a readable image"),
             "empty.png": (b"", "the file is empty"),
             "cut.png": (good.getvalue()[:40], "not a readable image"),
             "huge.png": (b"\x89PNG" + b"0" * (9 << 20), "larger than 8 MiB"),
             "bomb.png": (bomb(), "pixels")}
    with running_server(model, fashion_dir) as url:
        page = open_page(browser, url)
        for name, (content, message) in files.items():
            (tmp_path / name).write_bytes(content)
            page.set_input_files("#upload", str(tmp_path / name))
            page.wait_for_function("document.querySelector('#error').textContent.length > 0")
            assert message in page.locator("#error").text_content(), name
            # no answer for another image stays beside the error
            assert page.locator("#bars").text_content() == "—"
            assert page.locator("#overview canvas").count() == 0
            if name == "notes.txt":
                for size in SIZES:
                    page.set_viewport_size(SIZES[size])
                    page.screenshot(path=str(ARTIFACTS / f"page-bad-file-{size}.png"))
                page.set_viewport_size(SIZES["desktop"])
            page.click('#examples button[data-index="1"]')  # and the next image works
            page.wait_for_function("document.querySelector('#error').textContent === ''")
            page.wait_for_selector("#overview canvas")
        assert page.errors == []
        page.close()


def test_a_run_waiting_for_its_first_epoch_then_replaced(browser, tmp_path, fashion_dir):
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.json").write_text(json.dumps({"epochs": 3}))
    with running_server(run, fashion_dir) as url:
        page = open_page(browser, url, wait=False)
        page.wait_for_function("document.querySelector('#training-state').textContent"
                               ".includes('Waiting for the first epoch')")
        assert page.locator("#view-training").is_visible()
        page.screenshot(path=str(ARTIFACTS / "page-waiting-desktop.png"))
        for epoch in (1, 2):
            net = Network("conv(4,3) relu pool(2) fc(3)", input=(10, 10, 1), seed=epoch)
            checkpoint.save(net, run / "last", classes=("a", "b", "c"),
                            metrics={"epoch": epoch})
            rows = [{"epoch": e, "train_loss": 1 / e, "train_accuracy": 0.5,
                     "val_loss": 1.2 / e, "val_accuracy": 0.4 + e / 10} for e in
                    range(1, epoch + 1)]
            checkpoint.write_lines(run / "metrics.jsonl", [json.dumps(r) for r in rows])
            drawn(page, epoch)
            time.sleep(0.05)
        page.wait_for_function("document.querySelector('#notice').textContent"
                               ".includes('epoch 2')")
        page.click("#tab-training")
        page.wait_for_function("document.querySelector('#training-state').textContent"
                               ".includes('epoch 2 of 3')")
        page.screenshot(path=str(ARTIFACTS / "page-training-run-desktop.png"))
        assert page.errors == []
        page.close()


# -- hostile class names ---------------------------------------------------------------------

HOSTILE = ['<img src=x onerror="window.pwned=1">', "<script>window.pwned=2</script>",
           '"><svg onload="window.pwned=3">', "<b>bold</b>", "T-shirt & <i>top</i>",
           "javascript:window.pwned=4", "<iframe src=javascript:window.pwned=5>",
           "&lt;escaped&gt;", "</div><img src=x onerror=window.pwned=6>", "plain"]


@pytest.fixture(scope="module")
def hostile_model(model, tmp_path_factory):
    """The served model, its ten class names replaced by HTML that runs script if interpreted
    (as a class folder named so would give)."""
    import shutil

    target = tmp_path_factory.mktemp("hostile") / "model"
    shutil.copytree(checkpoint.resolve(model), target)
    meta = json.loads((target / "model.json").read_text())
    meta["classes"] = HOSTILE
    (target / "model.json").write_text(json.dumps(meta))
    return target


@pytest.mark.parametrize("csp", ["enforced", "bypassed"])
def test_class_names_that_are_html_show_as_text_and_run_nothing(browser, hostile_model,
                                                                fashion_dir, csp):
    """With the page's Content-Security-Policy, and without it (the page's own escaping alone):
    every class name appears as its literal text, no element comes from it, no script runs."""
    with running_server(hostile_model, fashion_dir) as url:
        page = browser.new_page(viewport={"width": 1200, "height": 900},
                                bypass_csp=csp == "bypassed")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        response = page.goto(url + "/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_selector("#examples button")
        for i in range(3):  # a few images, so that many classes reach the top five
            page.locator("#examples button").nth(i).click()
            page.wait_for_selector(f'#examples button[data-index="{i}"][aria-pressed="true"]')
            names = page.locator(".bar .name").all_text_contents()
            assert len(names) == 5 and set(names) <= set(HOSTILE)
            assert page.locator("#bars img, #bars svg, #bars script, #bars iframe, #bars b, "
                                "#bars i").count() == 0
        page.click("#tab-softmax")
        assert set(page.locator("#softmax td.name").all_text_contents()) == set(HOSTILE)
        assert page.evaluate("window.pwned") is None
        assert page.locator("body img[src='x']").count() == 0
        page.screenshot(path=str(ARTIFACTS / f"page-hostile-classes-{csp}.png"))
        assert errors == []
        page.close()
