"""Every HTML page the project writes opens in a real browser (headless Chromium, Debian's
``chromium`` package): each image loads and nothing is reported as an error.

How: the page's folder is copied elsewhere (a page must not depend on where it lies) and a
copy of the page gets a small probe script as the first element of its ``<head>``. The probe
records failed resource loads and script errors (a capturing ``error`` listener on
``window``), ``console.error`` calls and unhandled rejections; on ``load`` it writes, into the
DOM, every image's ``naturalWidth`` and what it recorded. ``chromium --headless --dump-dom``
prints the DOM after the load event, and the test reads the probe's JSON back from it. Any
``CONSOLE`` line Chromium logs to stderr (``--enable-logging=stderr``) for the page also counts
as an error: the pages have no scripts of their own, so the console must stay silent. Reading
the DOM needs no DevTools client, and the probe sees what the console shows without relying
on Chromium's log format for levels (which prints every console message at INFO).

The pages come from the session's real runs (``packaged_models``: every variant trained,
evaluated, packaged, medium-res benchmarked) and a comparison report built over them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from _tools import require_tool

PROBE = """<script id="__probe">
window.__errors = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__errors.push(t && t !== window && t.tagName
    ? "failed to load <" + t.tagName.toLowerCase() + "> "
      + String(t.getAttribute("src") || t.getAttribute("href")).slice(0, 80)
    : "script error: " + e.message);
}, true);
window.addEventListener("unhandledrejection", function (e) {
  window.__errors.push("unhandled rejection: " + e.reason);
});
var __consoleError = console.error;
console.error = function () {
  window.__errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
};
window.addEventListener("load", function () {
  var out = document.createElement("pre");
  out.id = "__probe_result";
  out.textContent = JSON.stringify({
    images: Array.prototype.map.call(document.images, function (i) {
      return {alt: i.alt, complete: i.complete, naturalWidth: i.naturalWidth};
    }),
    errors: window.__errors,
  });
  document.body.appendChild(out);
});
</script>"""

_RESULT = re.compile(r'<pre id="__probe_result">(.*?)</pre>', re.S)


def _chromium() -> str:
    return require_tool("chromium", "`apt-get install -y chromium` (.ci/run installs it before "
                        "`make test`)")


def _open(exe: str, page: Path, work: Path) -> dict[str, Any]:
    """Open ``page`` from a moved copy of its folder; the probe's findings and console lines."""
    folder = work / "moved" / page.parent.name
    shutil.copytree(page.parent, folder)
    html = (folder / page.name).read_text(encoding="utf-8")
    probed, n = re.subn(r"(<head[^>]*>)", lambda m: m.group(1) + PROBE, html, count=1,
                        flags=re.I)
    assert n == 1, f"{page} has no <head>"
    target = folder / f"probed-{page.name}"
    target.write_text(probed, encoding="utf-8")
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={work / 'profile'}", "--dump-dom", target.as_uri()],
        capture_output=True, text=True, timeout=60, check=False,
    )
    found = _RESULT.search(proc.stdout)
    assert proc.returncode == 0 and found, (page, proc.returncode, proc.stderr[-2000:])
    result: dict[str, Any] = json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">")
                                        .replace("&quot;", '"').replace("&amp;", "&"))
    result["console"] = [line for line in proc.stderr.splitlines()
                         if ":CONSOLE" in line and target.name in line]
    return result


@pytest.fixture(scope="module")
def pages(packaged_models: dict[str, dict[str, Path]],
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every HTML page the session's runs wrote: ``{what it is: path}``."""
    from aurora_mlops.comparison import ReportEntry, build_report

    out = {}
    for variant, paths in packaged_models.items():
        out[f"evaluation {variant}"] = paths["eval"] / "report.html"
        out[f"model card {variant}"] = paths["package"] / "artifacts" / "model_card.html"
    report = tmp_path_factory.mktemp("comparison") / "report"
    build_report([
        ReportEntry(variant=variant, dataset="synthetic", eval_dir=paths["eval"],
                    bench_dir=paths.get("bench"))
        for variant, paths in packaged_models.items()
    ], report)
    out["comparison report"] = report / "report.html"
    out["monitoring report"] = _monitoring_report(packaged_models, tmp_path_factory)
    return out


def _monitoring_report(packaged_models: dict[str, dict[str, Path]],
                       tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The medium-res package watched over two new days of its world (a real monitor run)."""
    from aurora_mlops.data import synthesize, write_dataset
    from aurora_mlops.monitoring import MonitorPlan, build_monitor_report, monitor

    root = tmp_path_factory.mktemp("monitoring")
    stream = write_dataset(synthesize("medium-res", seed=1, times=124), root / "stream.nc")
    plan = MonitorPlan(dataset=str(stream), model_uri=str(packaged_models["medium-res"]["package"]),
                       reference=str(packaged_models["medium-res"]["data"]),
                       tracking_uri=f"sqlite:///{root / 'mlflow.db'}", out_dir=root / "out",
                       lead_steps=1, since="2024-01-29T00:00")
    return build_monitor_report(monitor(plan).history, root / "out" / "report")


@pytest.mark.slow
def test_every_page_loads_its_images_without_errors(pages: dict[str, Path],
                                                    tmp_path: Path) -> None:
    exe = _chromium()
    for i, (what, page) in enumerate(sorted(pages.items())):
        result = _open(exe, page, tmp_path / str(i))
        images = result["images"]
        # Each page shows every PNG written beside it (a model card: the scorecards it ships).
        assert len(images) == len(list(page.parent.glob("*.png"))), (what, images)
        broken = [im["alt"] for im in images if not (im["complete"] and im["naturalWidth"] > 0)]
        assert not broken, f"{what}: images that did not load: {broken}"
        assert result["errors"] == [] and result["console"] == [], (what, result)
        if not what.startswith("model card"):
            # Reports open with their pictures; the tables come below.
            html = page.read_text(encoding="utf-8")
            assert images and html.index("<img") < html.index("<table"), what
    assert {w.split()[0] for w in pages} == {"evaluation", "model", "comparison", "monitoring"}


def test_the_probe_sees_a_broken_image_and_a_console_error(tmp_path: Path) -> None:
    """The check itself: a page with a missing image and a console error fails it."""
    exe = _chromium()
    page = tmp_path / "bad" / "page.html"
    page.parent.mkdir()
    png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
           "RU5ErkJggg==")
    page.write_text(
        "<!doctype html><html><head><title>t</title></head><body>"
        f'<img alt="ok" src="data:image/png;base64,{png}"><img alt="gone" src="gone.png">'
        "<script>console.error('boom')</script></body></html>", encoding="utf-8")
    result = _open(exe, page, tmp_path / "work")
    assert [(im["alt"], im["naturalWidth"] > 0) for im in result["images"]] == [
        ("ok", True), ("gone", False)]
    assert any("failed to load <img>" in e and "gone.png" in e for e in result["errors"])
    assert "console.error: boom" in result["errors"]
