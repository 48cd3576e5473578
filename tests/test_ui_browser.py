"""`spell ui` in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium).

The workspace is made by the examples (``spell run examples/*.lua``, agent.lua against the
fake provider, then ``spell replay``, which runs in a scratch world and adds nothing); the
real server runs as ``spell ui``. Each test loads
pages, finds what they must show, follows links and saves a screenshot (into
``$SPELL_UI_SCREENSHOTS`` when set: that is how docs/ui-*.png are made).

Skipped, saying why, only when the browser or its driver is not installed (.ci/run
installs them).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from conftest import SPELL

EXAMPLES = Path(__file__).parent.parent / "examples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytest.importorskip(
    "starlette", reason="the web extra is not installed (pip install 'spellfs[ui]')"
)
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
)
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="headless Chromium is not installed "
    "(apt-get install chromium chromium-driver; .ci/run does)",
)

from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """A workspace made by every example, served by `spell ui`; yields (url, root, ids by name)."""
    from fakeprovider import FakeProvider

    root = tmp_path_factory.mktemp("demo")
    with FakeProvider() as fake:
        env = {
            **os.environ,
            "OPENAI_API_KEY": "k",
            "OPENAI_BASE_URL": fake.url + "/v1",
            "SPELL_EXAMPLE_MODEL": "openai/fake-1",
        }
        env.pop("SPELL_WORKSPACE", None)
        for name in ("basic", "artifacts", "replay", "advanced", "integration", "agent"):
            r = subprocess.run(
                [*SPELL, "run", str(EXAMPLES / f"{name}.lua")],
                cwd=root,
                env=env,
                capture_output=True,
                timeout=120,
            )
            assert r.returncode == 0, (name, r.stderr.decode())
        from spellfs import Workspace

        with Workspace.open(root) as ws:
            everything = ws.sessions.list({"status": "all"})
            # the example's chart.png is a PNG signature and filler: add a picture to draw
            demo = next(s["id"] for s in everything if s["name"] == "Artifact Demo")
            ws.artifacts.store(demo, "system_generated", "gradient.png", png())
            ids = {s["name"]: s["id"] for s in reversed(everything)}  # a repeated name: the oldest
            everything = ws.sessions.list({"status": "all"})  # as the replay finds them
        r = subprocess.run(
            [*SPELL, "-w", str(root), "replay", ids["Data Pipeline"]],
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr.decode()
        with Workspace.open(root) as ws:  # the replay left no session behind, nor changed one
            after = ws.sessions.list({"status": "all"})
            assert [(s["id"], s["status"], s["updated_at"]) for s in after] == [
                (s["id"], s["status"], s["updated_at"]) for s in everything
            ]
            ids["#"] = len(after)
    p = subprocess.Popen(
        [*SPELL, "-w", str(root), "ui", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = p.stdout.readline()
        m = re.search(r"at (http://\S+)/ \(Ctrl-C stops\)", line)
        assert m, line + p.stderr.read()
        yield m.group(1), root, ids
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--hide-scrollbars",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def png(width: int = 96, height: int = 48) -> bytes:
    """A real PNG (a gradient), made here so the browser has something to decode."""
    raw = b"".join(
        b"\0" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def shot(browser, tmp_path: Path, name: str) -> None:
    """Save a screenshot of the whole page; check it is a real picture."""
    path = tmp_path / f"ui-{name}.png"
    assert browser.save_screenshot(str(path))
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000
    out = os.environ.get("SPELL_UI_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(out) / path.name)


def text_of(browser, by: str, what: str, expected: str | None = None) -> str:
    """The element's text once the page that has it is loaded (a click navigates asynchronously);
    with ``expected``, wait until it reads that."""

    def ready(d):
        try:
            t = d.find_element(by, what).text
        except (NoSuchElementException, StaleElementReferenceException):
            return False
        return t if expected is None or t == expected else False

    try:
        return WebDriverWait(browser, 20).until(ready)
    except TimeoutException:
        found = browser.find_elements(by, what)
        return found[0].text if found else f"<no {what} on {browser.current_url}>"


def problems(browser) -> list[str]:
    """Console errors: a CSP violation or a missing asset shows up here."""
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_sessions_page_search_and_follow(demo, browser, tmp_path: Path) -> None:
    url, root, ids = demo
    browser.get(url + "/")
    assert browser.title == "sessions · spell ui"
    rows = browser.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")
    assert len(rows) == ids["#"]
    counts = browser.find_element(By.ID, "counts").text
    assert counts.startswith(f"{ids['#']} of {ids['#']} sessions")
    # the stylesheet loaded (served by us, allowed by the CSP): the header is dark
    header = browser.find_element(By.CSS_SELECTOR, "header.top")
    assert header.value_of_css_property("background-color") == "rgba(29, 35, 42, 1)"
    shot(browser, tmp_path, "sessions")
    box = browser.find_element(By.NAME, "q")
    box.send_keys("pipeline")
    browser.find_element(By.CSS_SELECTOR, "#filters button").click()
    WebDriverWait(browser, 20).until(lambda d: "q=pipeline" in d.current_url)
    assert text_of(browser, By.ID, "counts").startswith(f"2 of {ids['#']} sessions")
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.session-link")]
    # the example's session and its fork; the replay made no session here
    assert sorted(names) == ["Data Pipeline", "Pipeline from checkpoint 1"]
    browser.find_element(By.LINK_TEXT, "Data Pipeline").click()
    assert (
        text_of(browser, By.CSS_SELECTOR, "#session-nav .sname", "Data Pipeline") == "Data Pipeline"
    )
    assert problems(browser) == []


def test_session_and_artifact_pages(demo, browser, tmp_path: Path) -> None:
    url, root, ids = demo
    browser.get(f"{url}/s/{ids['Artifact Demo']}")
    assert browser.find_element(By.ID, "manifest").is_displayed()
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.artifact-link")]
    assert {"report.txt", "metrics.json", "chart.png", "notes.md"} <= set(names)
    assert "demo" in browser.find_element(By.ID, "manifest").text
    shot(browser, tmp_path, "session")
    browser.find_element(By.LINK_TEXT, "gradient.png").click()
    text_of(browser, By.ID, "artifact-name", "gradient.png")
    img = browser.find_element(By.CSS_SELECTOR, "img.preview")
    assert img.get_property("naturalWidth") == 96  # the image loaded and decoded
    shot(browser, tmp_path, "artifact-image")
    browser.find_element(By.LINK_TEXT, "session").click()
    text_of(browser, By.ID, "manifest")
    browser.find_element(By.LINK_TEXT, "notes.md").click()
    text_of(browser, By.ID, "artifact-name", "notes.md")
    versions = browser.find_elements(By.CSS_SELECTOR, "section.version h2")
    assert [v.text.split(" (")[0] for v in versions][:2] == ["version 2", "version 1"]
    shot(browser, tmp_path, "artifact")
    browser.get(f"{url}/s/{ids['Artifact Demo']}")
    browser.find_element(By.LINK_TEXT, "metrics.json").click()
    text_of(browser, By.ID, "artifact-name", "metrics.json")
    pre = browser.find_element(By.CSS_SELECTOR, "pre.json")
    assert pre.text.startswith("{\n  ")  # pretty-printed
    assert problems(browser) == []


def test_history_graph_links_to_checkpoints_and_diff(demo, browser, tmp_path: Path) -> None:
    url, root, ids = demo
    sid = ids["Data Pipeline"]
    browser.get(f"{url}/s/{sid}/history")
    svg = browser.find_element(By.CSS_SELECTOR, "#graph svg")
    labels = svg.text
    assert "checkpoint 3: pipeline finished" in labels and "restored to checkpoint 2" in labels
    assert f"forked from {sid[:8]} at checkpoint 1" in labels
    assert "replay" not in labels  # a replay leaves no record: nothing to draw
    assert "replay" not in browser.find_element(By.TAG_NAME, "main").text  # nor a legend for it
    shot(browser, tmp_path, "history")
    node = browser.find_element(By.CSS_SELECTOR, f'#graph a[href="/s/{sid}/checkpoint/2"]')
    node.click()
    assert (
        text_of(browser, By.ID, "checkpoint-title", "Checkpoint 2: enriched")
        == "Checkpoint 2: enriched"
    )
    browser.find_element(By.ID, "diff-now").click()
    assert text_of(browser, By.ID, "diff-title", "checkpoint 2 → now") == "checkpoint 2 → now"
    # pick two checkpoints in the form
    browser.find_element(By.CSS_SELECTOR, "select[name=from] option[value='1']").click()
    browser.find_element(By.CSS_SELECTOR, "select[name=to] option[value='3']").click()
    browser.find_element(By.CSS_SELECTOR, "#diff-form button").click()
    title = text_of(browser, By.ID, "diff-title", "checkpoint 1 → checkpoint 3")
    assert title == "checkpoint 1 → checkpoint 3"
    assert browser.find_element(By.ID, "summary").text == "8 added, 0 changed, 0 removed"
    assert problems(browser) == []


def test_side_by_side_diff(demo, browser, tmp_path: Path) -> None:
    url, root, ids = demo
    # a text change between a checkpoint and now, made by hand and recorded with `spell add`
    from spellfs import Workspace

    with Workspace.open(root) as ws:
        sid = ids["Data Analysis"]
        ws.artifacts.store(
            sid, "user_input", "brief.md", "# Q4 brief\n\nRevenue grew; costs fell.\n"
        )
    browser.get(f"{url}/s/{sid}/diff?from=1&to=now")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.sbs tr.replace, table.sbs tr.insert")
    assert (
        rows
        and "Revenue grew; costs fell." in browser.find_element(By.CSS_SELECTOR, "table.sbs").text
    )
    shot(browser, tmp_path, "diff")
    assert problems(browser) == []


def test_runs_calls_and_how_to_replay(demo, browser, tmp_path: Path) -> None:
    url, root, ids = demo
    browser.get(f"{url}/s/{ids['Agent Demo']}/runs")
    runs = browser.find_elements(By.CSS_SELECTOR, "article.run")
    assert len(runs) == 1 and "agent.lua" in runs[0].text and "exit 0" in runs[0].text
    calls = browser.find_elements(By.CSS_SELECTOR, "article.call")
    assert len(calls) == 2 and "echo: Name three primary colours." in calls[1].text
    usage = browser.find_element(By.ID, "usage").text
    assert "openai/fake-1 2" in usage
    shot(browser, tmp_path, "runs")
    sid = ids["Data Pipeline"]
    browser.get(f"{url}/s/{sid}/runs")
    commands = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "article.run p.replay code")]
    assert commands and all(c.startswith(f"spell replay {sid[:8]} --run ") for c in commands)
    # the command shown replays that run, and the page is the same afterwards
    before = browser.find_element(By.ID, "runs").text
    r = subprocess.run(
        [*SPELL, "-w", str(root), *commands[0].split()[1:], "--json"],
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode()
    browser.refresh()
    assert browser.find_element(By.ID, "runs").text == before
    assert problems(browser) == []
