"""The replay report: claim vectors replay cleanly, the HTML renders in headless Chromium, and chart labels follow the report's language."""

from __future__ import annotations

import base64
import csv
import json
import shutil
import subprocess
import warnings

import pytest

from adapters.cli import main
from adapters.replay import report
from vector_files import EXAMPLES, edited_vector, vector_paths

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_claim_vectors_replay_without_discrepancy(tmp_path):
    out = tmp_path / "report"

    status = main(["replay", str(EXAMPLES), "--out", str(out), "--workers", "1", "--no-progress"])

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert status == 0
    assert summary["counts"]["checked"] == len(vector_paths()) + 3  # ex23 adds a cancel, ex24 a cancel and a resettlement
    assert summary["counts"]["discrepancies"] == 0
    assert summary["chain"]["checked"] == 0


def test_wrong_expectation_is_reported_with_step(tmp_path):
    def change(vector):
        vector["expected"]["outputs"]["hifp_pay"] = "999.99"

    edited = edited_vector(tmp_path, "ex03", change)
    out = tmp_path / "report"

    status = main(["replay", str(edited), "--out", str(out), "--workers", "1", "--no-progress", "--lang", "en"])

    with open(out / "discrepancies.csv", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert status == 1
    assert len(rows) == 1
    assert rows[0]["setl_id"] == "ex03"
    assert rows[0]["field"] == "hifp_pay"
    assert rows[0]["recorded"] == "99999"
    assert rows[0]["step"].startswith("band#0 (")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "hifp_pay" in html
    assert "Discrepancies by day" in html


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_html_report_renders_in_headless_chromium(tmp_path, lang):
    def change(vector):
        vector["expected"]["outputs"]["acct_pay"] = "0.01"

    edited = edited_vector(tmp_path, "ex03", change)
    out = tmp_path / "report"
    assert main(["replay", str(edited), str(EXAMPLES / "ex02-all-class-a-deductible-met.json"), "--out", str(out),
                 "--workers", "1", "--no-progress", "--lang", lang]) == 1
    screenshot = tmp_path / "report.png"
    profile = tmp_path / "chromium-profile"
    profile.mkdir()

    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--window-size=1200,1600", f"--screenshot={screenshot}",
         (out / "report.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )

    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000  # a blank page compresses to a few kilobytes


def test_chart_labels_in_english():
    assert report.chart_labels("chart_day", "en") == ("Discrepancies by day", "Count", None)


def test_chart_labels_without_chinese_font(monkeypatch):
    monkeypatch.setattr(report, "cjk_font_family", lambda: None)

    assert report.chart_labels("chart_fund", "zh") == ("Discrepancies by fund", "Count", None)


def test_chinese_chart_draws_every_glyph():
    # .ci/run installs fonts-noto-cjk, the same package the Chromium test needs for the page.
    family = report.cjk_font_family()
    assert family is not None

    assert report.chart_labels("chart_day", "zh") == ("按日差异数", "笔数", family)
    # matplotlib warns for every glyph its font lacks; here a warning fails the test.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = base64.b64decode(report._chart({"2024-05-01": 3, "2024-05-02": 1}, "chart_day", "zh", True))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_chinese_font_installed_after_font_list(monkeypatch):
    # matplotlib's cached font list can predate the font's installation. Here the list loses
    # its Chinese fonts, and the report must find them again among the system's font files.
    from matplotlib import font_manager

    manager = font_manager.fontManager
    without_cjk = [entry for entry in manager.ttflist if "CJK" not in entry.name]
    monkeypatch.setattr(manager, "ttflist", without_cjk)
    manager._findfont_cached.cache_clear()
    report.cjk_font_family.cache_clear()
    try:
        family = report.cjk_font_family()
    finally:
        report.cjk_font_family.cache_clear()
        monkeypatch.undo()
        manager._findfont_cached.cache_clear()

    assert family == "Noto Sans CJK SC"
