"""readiness.html in a real browser (headless Chromium): rendered DOM, escaping, no fetches, no console errors.

Network is watched with Chromium's own net log (every URL request the page starts), console messages
with --enable-logging=stderr; a planted page proves both detectors see what they must.
Set PGREADY_UPDATE_SCREENSHOT=1 to refresh docs/report-screenshot.png from this run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_pgready.report import write_reports
from pytest_pgready.report.sample import HOSTILE, sample_doc

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]

if not CHROMIUM.exists():
    pytest.skip("headless Chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
                allow_module_level=True)


def chromium(tmp_path: Path, url: str, *args: str) -> tuple[str, str, Path]:
    """Run headless Chromium once; returns (stdout, stderr, net-log path)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    netlog = profile.with_suffix(".netlog.json")
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}",
           "--hide-scrollbars", *args, url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout, r.stderr, netlog


def page_requests(netlog: Path) -> list[str]:
    """URLs of non-file requests started on behalf of a file:// page (the browser's own traffic excluded)."""
    data = json.loads(netlog.read_text())
    start = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    out = []
    for e in data["events"]:
        p = e.get("params") or {}
        if e.get("type") == start and str(p.get("network_isolation_key", "")).startswith("file://"):
            if not str(p.get("url", "")).startswith(("file:", "data:")):
                out.append(p["url"])
    return out


def console_lines(stderr: str) -> list[str]:
    return [x for x in stderr.splitlines() if ":CONSOLE" in x]


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._stack: list[str | None] = []
        self.by_id: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        self._stack.append(a.get("id"))

    def handle_endtag(self, tag):
        if self._stack:
            self._stack.pop()

    def handle_data(self, data):
        self.text.append(data)
        for i in self._stack:
            if i:
                self.by_id[i] = self.by_id.get(i, "") + data


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    paths = write_reports(sample_doc(), tmp / "report", step_summary=False)
    return tmp, paths["html"]


def test_detectors_see_a_planted_fetch_and_console_error(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("planted")</script>'
                   '<img src="http://192.0.2.1/x.png"></body></html>')
    _, err, netlog = chromium(tmp_path, bad.as_uri(), "--dump-dom")
    assert any("planted" in x for x in console_lines(err))
    assert page_requests(netlog) == ["http://192.0.2.1/x.png"]


def test_rendered_dom(rendered, tmp_path):
    _, html_path = rendered
    dom_text, err, netlog = chromium(tmp_path, html_path.as_uri(), "--dump-dom")
    dom = _Dom()
    dom.feed(dom_text)
    doc = sample_doc()
    assert dom.by_id["score"].strip() == f"{doc['score']:g}"
    assert dom.by_id["verdict"].strip() == "NOT READY"
    work = dom.by_id["worklist"]
    for cid in ("CFG006", "IDX001", "SEC003", "REP005", "SCH003"):
        assert cid in work
    assert work.index("CFG006") < work.index("IDX001") < work.index("SCH003")
    # the hostile object name is text, never an element
    assert not [a for t, a in dom.tags if t == "img"]
    assert not [a for t, a in dom.tags if any(k.startswith("on") for k in a)]
    assert HOSTILE in "".join(dom.text)
    assert page_requests(netlog) == []
    assert console_lines(err) == [], console_lines(err)
    svgs = [a for t, a in dom.tags if t == "svg"]
    assert len(svgs) >= 9  # score ring, categories and every metric chart


def test_file_references_nothing_external(rendered):
    _, html_path = rendered
    text = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", html_path.read_text())
    assert not re.findall(r"https?://", text)


def test_screenshot(rendered, tmp_path):
    _, html_path = rendered
    png = tmp_path / "report.png"
    _, err, netlog = chromium(tmp_path, html_path.as_uri(), f"--screenshot={png}", "--window-size=1280,2400")
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1280, 2400)
    assert png.stat().st_size > 50_000  # a blank page compresses to a few KB
    assert page_requests(netlog) == [] and console_lines(err) == []
    if os.environ.get("PGREADY_UPDATE_SCREENSHOT"):
        shutil.copyfile(png, ROOT / "docs" / "report-screenshot.png")


def test_print_to_pdf(rendered, tmp_path):
    _, html_path = rendered
    pdf = tmp_path / "report.pdf"
    chromium(tmp_path, html_path.as_uri(), f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and len(re.findall(rb"/Type\s*/Page\b", data)) >= 2
