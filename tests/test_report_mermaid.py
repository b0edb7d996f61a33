"""The report's Mermaid charts parse and render with the real Mermaid library, in a real browser.

The string checks in test_report_render.py follow the xychart grammar as read; this test asks
Mermaid itself (the npm package locked in tests/mermaid/package-lock.json) inside headless
Chromium (Debian's `chromium`): every chart of every golden report, and the charts of a report
whose names were forged to break out of them, must parse and render to an SVG with no error,
while a broken chart (the control) must fail, so the check is known to be able to fail.

Needs `apt-get install chromium` and `npm ci --prefix tests/mermaid` (.ci/run does both); without
them it is skipped locally and fails under CI.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mlops_template.records import ReportData
from mlops_template.report.render import render_report

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
MERMAID_JS = HERE / "mermaid" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
GOLDEN = HERE / "golden" / "report"
BROKEN = 'xychart-beta\n    title "unclosed\n    line "a" [1, 2'

PAGE = """<!doctype html>
<html><body><pre id="out">PENDING</pre>
<script src="{script}"></script>
<script>
const blocks = {blocks};
mermaid.initialize({{ startOnLoad: false, securityLevel: "strict" }});
(async () => {{
  const results = [];
  for (const [i, text] of blocks.entries()) {{
    try {{
      await mermaid.parse(text);
      const {{ svg }} = await mermaid.render("chart" + i, text);
      results.push({{ ok: true, svg: svg }});
    }} catch (error) {{
      results.push({{ ok: false, error: String((error && error.message) || error) }});
    }}
  }}
  document.getElementById("out").textContent = JSON.stringify(results);
}})();
</script></body></html>
"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _needs(what: str) -> None:
    message = f"{what} (`apt-get install chromium`; `npm ci --prefix tests/mermaid`)"
    if os.environ.get("CI"):
        pytest.fail(f"missing in CI: {message}")
    pytest.skip(f"not installed here: {message}")


def mermaid_blocks(text: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)\n```", text, flags=re.S)


def run_in_chromium(blocks: list[str], work: Path) -> list[dict]:
    """Each block through mermaid.parse and mermaid.render in headless Chromium."""
    browser = _chromium()
    if browser is None:
        _needs("chromium")
    if not MERMAID_JS.is_file():
        _needs("the mermaid npm package")
    page = work / "charts.html"
    page.write_text(
        PAGE.format(script=MERMAID_JS.as_uri(), blocks=json.dumps(blocks)), encoding="utf-8"
    )
    done = subprocess.run(
        [
            str(browser),
            "--headless",
            "--no-sandbox",  # root in CI; the page is our own file
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={work / 'profile'}",
            "--virtual-time-budget=60000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    found = re.search(r'<pre id="out">(.*?)</pre>', done.stdout, flags=re.S)
    assert found, f"chromium printed no result (exit {done.returncode}): {done.stderr[-2000:]}"
    text = html.unescape(found.group(1))
    assert text != "PENDING", "Mermaid did not finish within the virtual time budget"
    return json.loads(text)


FORGED_NAMES = ReportData(
    curves_pr={
        'eval/loss"]\n```\n<img src=x>': [(0, 1.0), (1, 0.5), (2, 0.25)],
        "train/acc%%{init: {}}%%": [(0, 0.1), (1, 0.9), (2, 0.95)],
    },
    curves_base={'eval/loss"]\n```\n<img src=x>': [(0, 1.2), (1, 0.6), (2, 0.3)]},
    f1_pr={'7"]; click': 0.9, "`8`": 0.8},
)


def test_every_chart_of_the_report_parses_and_renders_with_real_mermaid(tmp_path: Path) -> None:
    blocks = [b for path in sorted(GOLDEN.glob("*.md")) for b in mermaid_blocks(path.read_text())]
    forged = mermaid_blocks(render_report(FORGED_NAMES))
    assert len(blocks) >= 10 and len(forged) == 3  # two curves, one F1 chart
    results = run_in_chromium([*blocks, *forged, BROKEN], tmp_path)

    *charts, control = results
    assert not control["ok"], "the broken control chart parsed: the check cannot fail"
    for block, result in zip([*blocks, *forged], charts, strict=True):
        assert result["ok"], f"{result.get('error')}\n{block}"
        svg = result["svg"]
        assert svg.startswith("<svg") and "Syntax error" not in svg
        title = re.search(r'title "([^"]*)"', block).group(1)
        assert title in html.unescape(svg), title  # the chart drew its own title
        assert "<img" not in svg
