"""The page in a real browser: Debian's Chromium, headless, driven by Playwright.

Screenshots are saved to tests/artifacts/ (ignored by git) for a person to look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convnet import checkpoint
from convnet.data import load_dataset
from serving import running_server

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]
ARTIFACTS = Path(__file__).parent / "artifacts"
@pytest.fixture(scope="module")
def model(served_model):
    return served_model


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: scripts/setup.sh installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield browser
        browser.close()


def test_upload_an_image_and_see_every_layer(browser, model, fashion_dir, tmp_path):
    test = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test
    path = tmp_path / "item.png"
    Image.fromarray(test.images[3, :, :, 0]).save(path)
    net, meta = checkpoint.load(model, engine="numpy")
    expected = meta["classes"][int(np.argmax(net.predict(test.images[3:4])[0]))]
    ARTIFACTS.mkdir(exist_ok=True)

    with running_server(model, fashion_dir) as url:
        # wait_for_function evaluates its text in the page, which the page's CSP forbids
        page = browser.new_page(viewport={"width": 1200, "height": 900}, bypass_csp=True)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_function("document.querySelector('#model').textContent.includes('conv(6,5)')")
        page.set_input_files("#upload", str(path))
        page.wait_for_function("document.querySelectorAll('#layers .layer').length === 9")
        assert page.locator(".bar .name").first.text_content() == expected
        drawn = page.eval_on_selector_all("#layers img", "imgs => imgs.map(i => i.naturalWidth)")
        assert len(drawn) == 9 and all(width > 0 for width in drawn)
        assert "(28 − 5 + 2·0)/1 + 1 = 24" in page.locator(".explain").first.text_content()

        # one number = ReLU(W·x + b): click a cell of the first conv layer's maps
        page.locator("img.conv").first.click(position={"x": 20, "y": 20})
        page.wait_for_selector("#cell:not([hidden])")
        assert "W·x + b =" in page.locator("#cell").text_content()

        # the playground: stride 3 on 7x7 with a 3x3 filter does not fit, and says what would
        page.fill("#pS", "3")
        page.dispatch_event("#pS", "input")
        page.wait_for_function("document.querySelector('#playground').textContent.includes('Fix')")
        page.screenshot(path=str(ARTIFACTS / "serve-page.png"), full_page=True)

        # a file that is not an image: a message on the page, and the server goes on
        bad = tmp_path / "notes.txt"
        bad.write_text("not an image")
        page.set_input_files("#upload", str(bad))
        page.wait_for_function("document.querySelector('#error').textContent.length > 0")
        assert "not a readable image" in page.locator("#error").text_content()
        page.click("#examples img")  # a test-set example still works afterwards
        page.wait_for_function("document.querySelector('#error').textContent === ''")
        page.screenshot(path=str(ARTIFACTS / "serve-after-error.png"))

        # draw on the canvas: a stroke is looked inside when the pen lifts
        page.evaluate("document.querySelector('#layers').innerHTML = ''")
        box = page.locator("#draw").bounding_box()
        page.mouse.move(box["x"] + 60, box["y"] + 40)
        page.mouse.down()
        page.mouse.move(box["x"] + 110, box["y"] + 180, steps=12)
        page.mouse.move(box["x"] + 170, box["y"] + 60, steps=12)
        page.mouse.up()
        page.wait_for_function("document.querySelectorAll('#layers .layer').length === 9")
        assert page.locator(".bar").count() == 5
        assert errors == []


HOSTILE = ['<img src=x onerror="window.pwned=1">', "<script>window.pwned=2</script>",
           '"><svg onload="window.pwned=3">', "<b>bold</b>", "T-shirt & <i>top</i>",
           "javascript:window.pwned=4", "<iframe src=javascript:window.pwned=5>",
           "&lt;escaped&gt;", "</div><img src=x onerror=window.pwned=6>", "plain"]


@pytest.fixture(scope="module")
def hostile_model(model, tmp_path_factory):
    """The served model, its ten class names replaced by HTML that runs script if interpreted
    (as a class folder named so would give)."""
    import json
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
    ARTIFACTS.mkdir(exist_ok=True)
    with running_server(hostile_model, fashion_dir) as url:
        page = browser.new_page(viewport={"width": 1200, "height": 900},
                                bypass_csp=csp == "bypassed")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        response = page.goto(url + "/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_selector("#examples img")
        for i in range(3):  # a few images, so that many classes reach the top five
            page.locator("#examples img").nth(i).click()
            page.wait_for_selector("#layers .layer")
            names = page.locator(".bar .name").all_text_contents()
            assert len(names) == 5 and set(names) <= set(HOSTILE)
            assert page.locator("#bars img, #bars svg, #bars script, #bars iframe, #bars b, "
                                "#bars i").count() == 0
        assert page.evaluate("window.pwned") is None
        assert page.locator("body img[src='x']").count() == 0
        page.screenshot(path=str(ARTIFACTS / f"serve-hostile-classes-{csp}.png"))
        assert errors == []
        page.close()
