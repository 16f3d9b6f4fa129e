"""report.html in headless Chromium (Debian's ``chromium``): it renders, every image loads, no console errors.

The report itself holds no script. A copy gets a small probe script that records, after the load
event, how many images decoded and every error event, into a DOM attribute read back with
``--dump-dom``; Chromium's console log (``--enable-logging=stderr``) must hold nothing but the probe's
own line. A copy with a corrupted image checks that the probe does catch a broken one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from evaluation import run_backtest
from evaluation.report import build_report
from tests.evaluation.report_fixtures import make_run

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (`make browser` installs Debian's chromium)"),
]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message || e.type)); }, true);
window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  document.body.setAttribute("data-probe", JSON.stringify({images: imgs.length, broken: broken,
    errors: window.__errors, title: document.title}));
  console.log("NEWSALPHA_PROBE loaded");
});
</script>"""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "chromium-profile"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def probe(html_path: Path, tmp: Path) -> tuple[dict, list[str]]:
    """Load a probed copy of ``html_path``; the probe's record and the console lines."""
    probed = html_path.with_name(html_path.stem + ".probe.html")
    probed.write_text(html_path.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    args = ("--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    out = chromium(tmp, *args)
    match = re.search(r'data-probe="([^"]*)"', out.stdout)
    assert match, f"page did not finish loading; stderr tail: {out.stderr[-2000:]}"
    record = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    console = [line for line in out.stderr.splitlines() if ":CONSOLE" in line]
    return record, console


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    run_dir = make_run(tmp_path_factory.mktemp("browser") / "run")
    run_backtest(run_dir)
    return build_report(run_dir)["html"]


def test_report_renders_with_all_images_and_no_console_errors(report, tmp_path):
    record, console = probe(report, tmp_path)
    assert record["images"] == 6 and record["broken"] == 0
    assert record["errors"] == []
    assert record["title"].startswith("newsalpha evaluation")
    assert [c for c in console if "NEWSALPHA_PROBE" not in c] == []
    assert any("NEWSALPHA_PROBE" in c for c in console), "console capture is not working"


def test_probe_catches_a_broken_image(report, tmp_path):
    broken = tmp_path / "broken.html"
    text = report.read_text(encoding="utf-8")
    broken.write_text(text.replace("data:image/png;base64,iVBOR", "data:image/png;base64,XXXX", 1), encoding="utf-8")
    record, _ = probe(broken, tmp_path)
    assert record["images"] == 6 and record["broken"] == 1


def test_screenshot_is_not_blank(report, tmp_path):
    import matplotlib.image as mpimg

    shot = tmp_path / "shot.png"
    chromium(tmp_path, "--hide-scrollbars", "--window-size=1200,1600", f"--screenshot={shot}", report.as_uri())
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    assert np.std(pixels) > 0.05  # text, tables and figures, not an empty page
