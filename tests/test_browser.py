"""The rendered book, as a reader's browser sees it: headless Chromium over every page of the built HTML.

Needs the built book (``make book``) and Debian's chromium (``make chromium``). For every page in ``_toc.yml``:
the page loads from a local server with every request to another host blocked (the book must work offline);
every piece of math is typeset by MathJax and no raw TeX delimiters are left; every image has loaded; every
internal link and anchor resolves; the console shows no errors beyond the allow-list below. A full-page screenshot
of each page is saved under ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
# Another built copy can be checked with DIFFNOTES_BOOK_BUILD=path/to/_build (it holds html/ and gets screenshots/).
BUILD = Path(os.environ.get("DIFFNOTES_BOOK_BUILD", ROOT / "_build"))
HTML = BUILD / "html"
SCREENSHOTS = BUILD / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Console errors that are the themes' own noise, not the book's (each checked by hand):
CONSOLE_ALLOW = [
    # sphinx-thebe's script is included twice by jupyter-book's theme; the second copy redeclares a constant.
    # Thebe (live code) is switched off in this book, so nothing depends on it.
    re.compile(r"Identifier 'THEBE_JS_URL' has already been declared"),
    # pydata-sphinx-theme logs this on a first visit, before a light/dark choice is stored; it then uses "auto".
    re.compile(r"Got invalid theme mode: \. Resetting to auto\."),
    # pydata-sphinx-theme asks for a version-switcher JSON that a book without versions does not have.
    re.compile(r"switcher", re.I),
    # The browser asks for /favicon.ico; the book has no favicon.
    re.compile(r"favicon\.ico"),
]


def _pages() -> list[str]:
    """Every page listed in _toc.yml, as a path relative to the HTML root."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return [re.sub(r"\.(md|ipynb)$", "", f) + ".html" for f in files]


PAGES = _pages()


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built book at {HTML}: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("the browser test needs Chromium: `make chromium` (or apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _local_target(url: str, base: str) -> tuple[Path, str] | None:
    """The file and the anchor a same-site link points to (None for other sites)."""
    parts = urlsplit(url)
    if not url.startswith(base):
        return None
    path = HTML / unquote(parts.path.lstrip("/"))
    if path.is_dir():
        path = path / "index.html"
    return path, unquote(parts.fragment)


@functools.lru_cache(maxsize=None)
def _ids(path: Path) -> frozenset[str]:
    text = path.read_text(errors="replace")
    return frozenset(re.findall(r'\b(?:id|name)="([^"]+)"', text))


@pytest.mark.parametrize("page_path", PAGES)
def test_page_renders_offline(server, browser, page_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console_errors, external_requests = [], []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(f"page error: {e}"))

    def only_local(route):
        if route.request.url.startswith(server) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            external_requests.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    url = urljoin(server, page_path)
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, f"{page_path} did not load"
    # The title (browser tab, search results) is plain text: Sphinx puts a heading's TeX into it verbatim.
    title = page.title()
    assert "$" not in title and "\\" not in title, f"{page_path}: raw TeX in the page title {title!r}"

    # Math: wait for MathJax to finish; every math element must hold a typeset container.
    page.wait_for_function("() => window.MathJax === undefined || (MathJax.startup && MathJax.startup.promise)")
    page.evaluate("() => window.MathJax === undefined ? null : MathJax.startup.promise")
    math = page.evaluate(
        """() => {
            const maths = Array.from(document.querySelectorAll('.math'));
            return {total: maths.length,
                    untypeset: maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60)),
                    containers: document.querySelectorAll('mjx-container').length};
        }"""
    )
    assert not math["untypeset"], f"{page_path}: math left untypeset: {math['untypeset'][:3]}"
    assert math["containers"] >= math["total"]
    text = page.evaluate(
        """() => { const clone = document.querySelector('main, body').cloneNode(true);
                   clone.querySelectorAll('pre, code, script, style, mjx-container').forEach(e => e.remove());
                   return clone.textContent; }"""
    )
    for raw in ("$$", "\\[", "\\begin{", "\\frac"):
        assert raw not in text, f"{page_path}: raw TeX {raw!r} visible on the page"

    # Display equations fit the text column (a wider one is cut off or needs sideways scrolling).
    too_wide = page.evaluate(
        """() => Array.from(document.querySelectorAll('mjx-container[display="true"]'))
                 .filter(m => m.offsetParent !== null && m.scrollWidth > m.clientWidth + 2)
                 .map(m => (m.closest('div.math') || m).textContent.trim().slice(0, 60))"""
    )
    assert not too_wide, f"{page_path}: display math wider than the page: {too_wide}"

    # Code the reader sees fits the text column at a laptop's 1280 px (no sideways scrolling; _static/diffnotes.css).
    wide_code = page.evaluate(
        """() => Array.from(document.querySelectorAll('div.cell_input pre'))
                 .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
                 .map(e => e.textContent.split('\\n').reduce((a, b) => b.length > a.length ? b : a, '').slice(0, 60))"""
    )
    assert not wide_code, f"{page_path}: code cells wider than the text column: {wide_code[:3]}"

    # Images: each one loaded and has a size.
    broken = page.evaluate(
        "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    assert not broken, f"{page_path}: images that did not load: {broken}"

    # Links: every same-site link resolves to a file, and every anchor to an element of that file.
    hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    dead = []
    for href in hrefs:
        target = _local_target(href, server)
        if target is None:
            continue
        path, anchor = target
        if not path.exists():
            dead.append(href)
        elif anchor and path.suffix == ".html" and anchor not in _ids(path):
            dead.append(href)
    assert not dead, f"{page_path}: links that do not resolve: {sorted(set(dead))[:10]}"

    page.screenshot(path=str(SCREENSHOTS / (page_path.replace("/", "_").removesuffix(".html") + ".png")), full_page=True)
    page.close()

    assert not external_requests, f"{page_path}: the page asked for other hosts (it must work offline): {external_requests}"
    unexpected = [e for e in console_errors if not any(p.search(e) for p in CONSOLE_ALLOW)]
    assert not unexpected, f"{page_path}: console errors: {unexpected}"


def test_every_notebook_page_offers_its_ipynb(server, browser):
    """Each chapter page links to its .ipynb source, and the file is served."""
    notebook_pages = [p for p in PAGES if (ROOT / p.replace(".html", ".ipynb")).exists()]
    assert notebook_pages
    page = browser.new_page()
    for page_path in notebook_pages:
        page.goto(urljoin(server, page_path))
        links = page.evaluate("() => Array.from(document.querySelectorAll('a[href$=\".ipynb\"]')).map(a => a.href)")
        assert links, f"{page_path}: no .ipynb download link"
        response = page.request.get(links[0])
        assert response.ok and '"cells"' in response.text()
    page.close()


def test_the_forward_process_slider_plays_without_a_kernel(server, browser):
    """Chapter 2's slider over the forward process (diffnotes.plotting.frames): its script runs in the static page,
    play advances the frame within a second or two, and moving the slider changes the image and its label."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(urljoin(server, "book/ch02_forward_process.html"), wait_until="load")
    slider = page.locator("#ch2-fig-dissolve .dn-frames")
    assert slider.count() == 1, "chapter 2 has no frame slider in its figure ch2-fig-dissolve"
    state = """root => {
        const shown = Array.from(root.querySelectorAll('img.dn-frame')).filter(i => !i.hidden);
        return {shown: shown.length, src: shown.length ? shown[0].src : null,
                label: root.querySelector('.dn-frames-label').textContent,
                frames: root.querySelectorAll('img.dn-frame').length};
    }"""
    first = slider.evaluate(state)
    assert first["frames"] >= 10 and first["shown"] == 1 and first["label"].startswith("t = 0")
    button, slide = slider.locator("button"), slider.locator('input[type="range"]')
    assert button.is_enabled() and slide.is_enabled(), "the slider's script did not run"

    button.click()  # play
    page.wait_for_function(
        "([root, label]) => root.querySelector('.dn-frames-label').textContent !== label",
        arg=[slider.element_handle(), first["label"]],
        timeout=2000,
    )
    playing = slider.evaluate(state)
    assert playing["shown"] == 1 and playing["src"] != first["src"]
    if button.text_content() == "Pause":
        button.click()

    slide.fill("10")  # drag to the middle frame
    moved = slider.evaluate(state)
    assert moved["shown"] == 1 and moved["label"].startswith("t = 500")
    assert moved["src"] not in (first["src"], playing["src"])
    slider.screenshot(path=str(SCREENSHOTS / "ch02_forward_process_slider.png"))
    # On paper (the PDF is the page printed by Chromium) the frame shown and its label remain, the controls go.
    page.emulate_media(media="print")
    assert not button.is_visible() and not slide.is_visible()
    assert slider.evaluate(state)["shown"] == 1 and slider.locator(".dn-frames-label").is_visible()
    page.close()
    unexpected = [e for e in errors if not any(p.search(e) for p in CONSOLE_ALLOW)]
    assert not unexpected, f"chapter 2's slider raised errors: {unexpected}"
