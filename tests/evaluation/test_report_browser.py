"""The reports in headless Chromium (Debian's ``chromium``): both run modes and the experiment report.

Each page holds no script. A probed copy gets a small script that records, after the load event, how many
images decoded, every error event, the title, the page height and where each figure sits, into a DOM
attribute read back with ``--dump-dom``; Chromium's console log (``--enable-logging=stderr``) must hold
nothing but the probe's own line. A full-page screenshot at the same width is then cut at each figure's box:
every figure must have drawn something (ink on at least 2% of its area), not an empty frame. A copy with a
corrupted image checks that the probe does catch a broken one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from evaluation.experiment_report import build_experiment_report
from evaluation.report import build_report
from tests.evaluation.tearsheet_runs import noisy_copy, synth_run, ts_run

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (`make browser` installs Debian's chromium)"),
]
WIDTH = 1440
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message || e.type)); }, true);
window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  var boxes = imgs.map(function (i) { var r = i.getBoundingClientRect();
    return [Math.round(r.left + scrollX), Math.round(r.top + scrollY), Math.round(r.width), Math.round(r.height)]; });
  document.body.setAttribute("data-probe", JSON.stringify({images: imgs.length, broken: broken, boxes: boxes,
    errors: window.__errors, title: document.title, height: document.documentElement.scrollHeight}));
  console.log("NEWSALPHA_PROBE loaded");
});
</script>"""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'chromium-profile'}", f"--window-size={WIDTH},1000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def probe(html_path: Path, tmp: Path) -> tuple[dict, list[str]]:
    """Load a probed copy of ``html_path``; the probe's record and the console lines."""
    probed = tmp / (html_path.stem + ".probe.html")
    probed.write_text(html_path.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    args = ("--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    out = chromium(tmp, *args)
    match = re.search(r'data-probe="([^"]*)"', out.stdout)
    assert match, f"page did not finish loading; stderr tail: {out.stderr[-2000:]}"
    record = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    console = [line for line in out.stderr.splitlines() if ":CONSOLE" in line]
    return record, console


def screenshot(html_path: Path, tmp: Path, height: int) -> np.ndarray:
    """A full-page screenshot (RGB floats in [0, 1]) at the probe's width."""
    import matplotlib.image as mpimg

    shot = tmp / (html_path.stem + ".png")
    chromium(tmp, f"--window-size={WIDTH},{height}", f"--screenshot={shot}", html_path.as_uri())
    return mpimg.imread(shot)[..., :3]


def check_page(html_path: Path, tmp: Path, n_images: int) -> dict:
    """Every image decodes, no error or console line, and every figure's box in the screenshot has ink."""
    record, console = probe(html_path, tmp)
    assert record["images"] == n_images and record["broken"] == 0
    assert record["errors"] == []
    assert [c for c in console if "NEWSALPHA_PROBE" not in c] == []
    assert any("NEWSALPHA_PROBE" in c for c in console), "console capture is not working"
    pixels = screenshot(html_path, tmp, record["height"])
    assert pixels.shape[1] == WIDTH and np.std(pixels) > 0.05
    for left, top, width, height in record["boxes"]:
        assert width > 300 and height > 120, "a figure is too small to read"
        box = pixels[top : top + height, left : left + width]
        ink = (box.min(axis=2) < 0.85).mean()  # pixels darker than a light grid line
        assert ink > 0.02, f"figure at {left},{top} is empty ({ink:.3f} ink)"
    return record


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser")
    cs = synth_run(root / "study_cs")
    other = noisy_copy(cs, root / "study_cs" / "noisy")
    return {"cs": cs, "ts": ts_run(root / "study_ts"), "other": other}


def test_cross_section_report_renders_every_figure(runs, tmp_path):
    paths = build_report(runs["cs"])
    figures = [k for k in paths if k.startswith("figure:")]
    assert {"figure:event_study", "figure:ic_decay", "figure:calibration", "figure:phenomena"} <= set(figures)
    record = check_page(paths["html"], tmp_path, len(figures))
    assert record["title"].startswith("study_cs · ") and "exret_h1" in record["title"]


def test_time_series_report_renders_every_figure(runs, tmp_path):
    paths = build_report(runs["ts"])
    figures = [k for k in paths if k.startswith("figure:")]
    assert "figure:ic" in figures and "figure:ic_hist" not in figures  # no daily cross-sectional IC in this mode
    check_page(paths["html"], tmp_path, len(figures))


def test_experiment_report_renders(runs, tmp_path):
    paths = build_experiment_report([runs["cs"], runs["other"]], tmp_path / "exp", names=["tfidf", "noisy"])
    record = check_page(paths["html"], tmp_path, 1)
    assert record["title"].startswith("study_cs · experiment")


def test_probe_catches_a_broken_image(runs, tmp_path):
    html_path = build_report(runs["ts"])["html"]
    broken = tmp_path / "broken.html"
    text = html_path.read_text(encoding="utf-8")
    broken.write_text(text.replace("data:image/svg+xml;base64,", "data:image/svg+xml;base64,XXXX", 1), encoding="utf-8")
    record, _ = probe(broken, tmp_path)
    assert record["broken"] == 1


def test_screenshot_check_catches_an_empty_figure(runs, tmp_path):
    import base64

    html_path = build_report(runs["ts"])["html"]
    blank = b'<svg xmlns="http://www.w3.org/2000/svg" width="460" height="220">'
    blank += b'<rect width="100%" height="100%" fill="#fff"/></svg>'
    text = re.sub(
        r"data:image/svg\+xml;base64,[^\"]+",
        "data:image/svg+xml;base64," + base64.b64encode(blank).decode("ascii"),
        html_path.read_text(encoding="utf-8"),
        count=1,
    )
    empty = tmp_path / "empty.html"
    empty.write_text(text, encoding="utf-8")
    n_images = text.count("<img")
    with pytest.raises(AssertionError, match="is empty"):
        check_page(empty, tmp_path, n_images)
