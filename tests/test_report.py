"""The Snakemake report (make report), opened in a real headless browser (Debian's chromium-headless-shell): the
curves, the tables, the config and each result's provenance are in the rendered page."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from helpers import clone_run, snakemake

from eenet.analysis.tables import tables_html

CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")
TARGETS = ["results/tiny/curve.pdf", "results/tiny/examples.pdf", "results/tiny/tables.html"]


def test_tables_page_holds_every_row_and_escapes_text():
    rows = [{"method": "a<b", "acc": "0.123456", "empty": ""}, {"method": "c", "acc": "7", "empty": ""}]
    page = tables_html("t & u", [("stats.csv", "note", rows)])
    assert "a&lt;b" in page and "t &amp; u" in page and "0.1235" in page and "<td>7</td>" in page
    assert "empty" not in page  # a column empty in every row is left out


def browse(report: Path, steps: list[list[str]]) -> str:
    """The rendered DOM of the report after clicking through ``steps``: ``["menu", label]`` a menu entry,
    ``["eye", path]`` / ``["info", path]`` the show / details button of a result."""
    script = """<script>
window.addEventListener('load', () => {
  const act = ([kind, text]) => {
    if (kind === 'menu') {
      const a = [...document.querySelectorAll('#app a')].find(x => x.textContent.trim() === text); if (a) a.click();
    } else {
      const row = [...document.querySelectorAll('#app tr')].find(r => r.cells.length && r.cells[0].textContent.trim() === text);
      const b = row && row.querySelector(kind === 'eye' ? 'a[iconname=eye]' : 'a[iconname=information-circle]'); if (b) b.click();
    }
  };
  STEPS.forEach((st, i) => setTimeout(() => act(st), 300 * (i + 1)));
});
</script></body>""".replace("STEPS", json.dumps(steps))
    text = report.read_text()
    page = report.with_name("browse.html")
    i = text.rfind("</body>")
    page.write_text(text[:i] + script + text[i + len("</body>") :])
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout[proc.stdout.find('<div id="app">') :]


def shown(dom: str, mime: str) -> bytes:
    """The content of the result the page shows (an iframe's data URI of type ``mime``)."""
    m = re.search(r'<iframe[^>]*src="data:' + re.escape(mime) + r'[^",]*,([^"]*)"', dom)
    assert m, f"no {mime} result shown in the page"
    data = urllib.parse.unquote(m.group(1).replace("&amp;", "&"))
    return base64.b64decode(data)


def visible_text(dom: str) -> str:
    dom = re.sub(r'data:[^"]{200,}', "", dom)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", "", dom, flags=re.S)))


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory):
    if CHROMIUM is None:
        pytest.fail("chromium-headless-shell is not installed: `make test` installs it with apt-get (Debian's package)")
    wd = clone_run(tiny_run, tmp_path_factory.mktemp("report"))
    snakemake(wd, *TARGETS)
    snakemake(wd, "--report", "results/report.html", *TARGETS)
    return wd / "results" / "report.html"


def test_the_report_shows_the_curve(report):
    dom = browse(report, [["menu", "Accuracy vs cost"], ["eye", "results/tiny/curve.pdf"]])
    assert shown(dom, "application/pdf")[:4] == b"%PDF"
    assert "results/tiny/runtime.pdf" in visible_text(dom)


def test_the_report_shows_the_tables_with_every_policy(report):
    dom = browse(report, [["menu", "Tables"], ["eye", "results/tiny/tables.html"]])
    page = shown(dom, "text/html").decode()
    for word in ("stats.csv", "summary.csv", "vs_maxpred_ci_low", "auc", "static_exit2"):
        assert word in page
    for method in ("eenet", "maxpred", "entropy", "oracle"):
        assert f"<td>{method}</td>" in page
    text = visible_text(dom)
    assert "results/tiny/stats.csv" in text and "results/tiny/summary.csv" in text


def test_the_report_gives_the_config_and_each_results_provenance(report):
    dom = browse(report, [["menu", "Tables"], ["info", "results/tiny/stats.csv"]])
    text = visible_text(dom)
    assert "Snakemake rule compute_stats" in text and "tolerance=0.05" in text
    assert '"methods" : [ "eenet" , "maxpred" , "entropy" , "oracle" ]' in text  # the config, defaults filled in
    dom = browse(report, [["menu", "Where samples leave"], ["eye", "results/tiny/examples.pdf"]])
    assert shown(dom, "application/pdf")[:4] == b"%PDF"
