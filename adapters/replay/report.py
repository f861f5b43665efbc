"""Write the replay report: a self-contained HTML page, a CSV of discrepancies and a JSON summary.

The HTML embeds its charts (matplotlib, PNG in base64) and its styles, so it opens from a
file with no network. A chart's title and axis label are in the report's language when
matplotlib finds a font with Chinese glyphs on the rendering machine. Without one, a
Chinese report's charts fall back to English labels, because missing glyphs would draw as
empty boxes. The bars are labelled with dates and fund codes, which are ASCII. The captions
around the charts are always in the report's language.
"""

from __future__ import annotations

import base64
import csv
import functools
import html
import io
from collections import Counter
from pathlib import Path

import msgspec

from adapters.replay.runner import ReplayOutcome
from adapters.replay.texts import FUND_NAMES, text
from settlement.errors import mask_identity
from settlement.money import format_amount
from settlement.replay.compare import Discrepancy, PartitionResult
from settlement.replay.steps import fund_of_field
from settlement.replay.totals import TOTAL_FIELDS

__all__ = ["mask_person", "summary", "write_csv", "write_html", "write_json"]

# The HTML lists at most this many discrepancies; the CSV has all of them.
HTML_ROW_LIMIT = 2000

CSV_COLUMNS = ("setl_id", "psn_no", "fixmedins_code", "setl_date", "kind", "field", "recorded", "recomputed", "step")


def mask_person(psn_no: str) -> str:
    """Return a person number with its middle hidden, as reports must not show it whole."""
    return mask_identity(psn_no)


def _grouped_totals(result: PartitionResult) -> tuple[dict[str, int], dict[str, list[int]], dict[str, list[int]]]:
    """Return totals per fund field, per institution and per day ([count, amounts...])."""
    by_fund = dict.fromkeys(TOTAL_FIELDS, 0)
    by_institution: dict[str, list[int]] = {}
    by_day: dict[str, list[int]] = {}
    for key, values in sorted(result.totals.items()):
        day, institution = key.split("|", 1)
        for position, field in enumerate(TOTAL_FIELDS, start=1):
            by_fund[field] += values[position]
        for group, name in ((by_institution, institution), (by_day, day)):
            row = group.setdefault(name, [0] * len(values))
            for position, value in enumerate(values):
                row[position] += value
    return by_fund, by_institution, by_day


def _conclusion(data: dict) -> str:
    if data["empty"]:
        return "result_empty"
    return "result_ok" if data["ok"] else "result_bad"


def summary(outcome: ReplayOutcome, source: str) -> dict:
    """Return the JSON summary: counts, chain, totals, discrepancy counts by day and fund, and the run."""
    result = outcome.replay or PartitionResult()
    by_fund, by_institution, by_day = _grouped_totals(result)
    rows = result.discrepancies
    return {
        "source": source,
        # An empty selection (a mistyped date or institution) proves nothing, so it is not ok.
        "ok": result.checked > 0 and not rows and not outcome.breaks,
        "empty": result.checked == 0,
        "counts": {
            "checked": result.checked, "matching": result.matching, "differing": result.differing,
            "settlements": result.settlements, "cancels": result.cancels, "discrepancies": len(rows),
        },
        "chain": {
            "checked": outcome.chain_checked, "layout": outcome.chain_layout,
            "breaks": [msgspec.to_builtins(item) for item in outcome.breaks],
        },
        "totals": {
            "fields": ["count", *TOTAL_FIELDS],
            "by_fund": by_fund,
            "by_institution": by_institution,
            "by_day": by_day,
        },
        "discrepancies_by_day": dict(sorted(Counter(row.setl_date for row in rows).items())),
        "discrepancies_by_fund": dict(sorted(Counter(fund_of_field(row.field) for row in rows).items())),
        "run": {"records": outcome.records, "seconds": round(outcome.seconds, 3), "runner": outcome.runner},
    }


def write_json(path: str | Path, data: dict) -> None:
    Path(path).write_bytes(msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n")


def write_csv(path: str | Path, rows: list[Discrepancy]) -> None:
    """Write every discrepancy, amounts in fen, person numbers masked."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([row.setl_id, mask_person(row.psn_no), row.fixmedins_code, row.setl_date, row.kind, row.field,
                             "" if row.recorded is None else row.recorded, "" if row.recomputed is None else row.recomputed,
                             row.step])


# Font families with Chinese glyphs, in order of preference: Debian's fonts-noto-cjk, then
# fonts common on other systems.
_CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Serif CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei", "SimHei")


@functools.cache
def cjk_font_family() -> str | None:
    """Return the first font family of ``_CJK_FAMILIES`` that matplotlib finds here, or None.

    matplotlib lists the system's fonts once, in a cache file, and does not see fonts
    installed after that (seen with matplotlib 3.11). When no family is found in its list, the system's font files
    that are not in it are added for this process, and the families are looked up again.
    """
    from matplotlib import font_manager

    family = _first_listed_family(font_manager)
    if family is None and _add_unlisted_system_fonts(font_manager):
        family = _first_listed_family(font_manager)
    return family


def _first_listed_family(font_manager) -> str | None:
    for family in _CJK_FAMILIES:
        try:
            font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        except ValueError:
            continue
        return family
    return None


def _add_unlisted_system_fonts(font_manager) -> bool:
    """Add the system's font files that matplotlib's list lacks; return whether any was added."""
    listed = {entry.fname for entry in font_manager.fontManager.ttflist}
    added = False
    for path in font_manager.findSystemFonts():
        if path in listed:
            continue
        try:
            font_manager.fontManager.addfont(path)
        except (OSError, RuntimeError, ValueError):
            # A file FreeType cannot read is skipped, so that one broken font does not hide the others.
            continue
        added = True
    return added


def chart_labels(key: str, lang: str) -> tuple[str, str, str | None]:
    """Return a chart's title, axis label and font family for ``lang``, in English where no Chinese font is found."""
    family = None if lang == "en" else cjk_font_family()
    if family is None:
        return text(key, "en"), text("count", "en"), None
    return text(key, lang), text("count", lang), family


def _chart(counts: dict[str, int], key: str, lang: str, rotate: bool) -> str:
    """Return a bar chart of ``counts`` as a base64 PNG, titled with the text under ``key`` in ``lang``."""
    # Imported here: matplotlib takes about a third of every command's start-up, and only the report draws.
    from matplotlib.figure import Figure

    title, ylabel, family = chart_labels(key, lang)
    font = {"fontfamily": family} if family else {}
    figure = Figure(figsize=(8, 3), dpi=96)
    axes = figure.subplots()
    if counts:
        axes.bar(list(counts), list(counts.values()), color="#c0392b")
        axes.tick_params(axis="x", labelrotation=60 if rotate else 0, labelsize=7)
    else:
        axes.text(0.5, 0.5, "0", ha="center", va="center", fontsize=20, color="#27ae60")
        axes.set_xticks([])
    axes.set_title(title, fontsize=9, **font)
    axes.set_ylabel(ylabel, **font)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _yuan(value: int) -> str:
    return format_amount(value)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
.ok { color: #1e7e34; font-weight: bold; } .bad { color: #b00020; font-weight: bold; }
img { max-width: 100%; }
"""


def write_html(path: str | Path, outcome: ReplayOutcome, data: dict, *, lang: str = "zh") -> None:
    """Write the self-contained HTML report in ``lang`` (zh or en)."""
    result = outcome.replay or PartitionResult()
    counts = data["counts"]
    parts = [
        f"<!DOCTYPE html><html lang=\"{'en' if lang == 'en' else 'zh-CN'}\"><head><meta charset=\"utf-8\">",
        f"<title>{html.escape(text('title', lang))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(text('title', lang))}</h1>",
        f"<p>{html.escape(text('generated', lang))}: {html.escape(data['source'])}</p>",
        f"<p class=\"{'ok' if data['ok'] else 'bad'}\">{html.escape(text(_conclusion(data), lang))}</p>",
        f"<h2>{html.escape(text('counts', lang))}</h2>",
        _table([text("counts", lang), text("count", lang)], [
            [text(key, lang), str(counts[key if key != "discrepancy_rows" else "discrepancies"])]
            for key in ("checked", "matching", "differing", "settlements", "cancels", "discrepancy_rows")
        ]),
        f"<h2>{html.escape(text('chain', lang))}</h2>",
    ]
    if not outcome.chain_checked:
        parts.append(f"<p>{html.escape(text('chain_none', lang))}</p>")
    elif not outcome.breaks:
        parts.append(f"<p class=\"ok\">{html.escape(text('chain_ok', lang, count=outcome.chain_checked, layout=outcome.chain_layout))}</p>")
    for item in outcome.breaks:
        parts.append(f"<p class=\"bad\">{html.escape(text('chain_break', lang, **msgspec.to_builtins(item)))}</p>")

    totals = data["totals"]
    parts.append(f"<h2>{html.escape(text('totals_fund', lang))}</h2>")
    parts.append(_table([text("fund", lang), text("amount", lang)], [
        [FUND_NAMES.get(field, {}).get(lang, text(field, lang) if field in ("medfee_sumamt", "fund_pay_sumamt") else field),
         _yuan(value)]
        for field, value in totals["by_fund"].items()
    ]))
    amount_headers = [text("count", lang), text("medfee_sumamt", lang), text("fund_pay_sumamt", lang),
                      text("acct_pay", lang), text("psn_cash_pay", lang)]
    picked = [TOTAL_FIELDS.index(field) + 1 for field in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")]
    for key, label in (("by_institution", "institution"), ("by_day", "day")):
        parts.append(f"<h2>{html.escape(text('totals_' + label, lang))}</h2>")
        parts.append(_table([text(label, lang), *amount_headers], [
            [name, str(values[0]), *(_yuan(values[index]) for index in picked)] for name, values in totals[key].items()
        ]))

    parts.append(f"<h2>{html.escape(text('chart_day', lang))}</h2>")
    parts.append(f"<img alt=\"{html.escape(text('chart_day', lang))}\" src=\"data:image/png;base64,"
                 f"{_chart(data['discrepancies_by_day'], 'chart_day', lang, True)}\">")
    parts.append(f"<h2>{html.escape(text('chart_fund', lang))}</h2>")
    parts.append(f"<img alt=\"{html.escape(text('chart_fund', lang))}\" src=\"data:image/png;base64,"
                 f"{_chart(data['discrepancies_by_fund'], 'chart_fund', lang, False)}\">")

    parts.append(f"<h2>{html.escape(text('discrepancies', lang))}</h2>")
    rows = result.discrepancies
    if not rows:
        parts.append(f"<p class=\"ok\">{html.escape(text('no_discrepancies', lang))}</p>")
    else:
        if len(rows) > HTML_ROW_LIMIT:
            parts.append(f"<p>{html.escape(text('shown_first', lang, shown=HTML_ROW_LIMIT, total=len(rows)))}</p>")
        headers = [text(key, lang) for key in ("setl_id", "psn_no", "institution", "day", "kind", "field", "recorded", "recomputed", "step")]
        parts.append(_table(headers, [
            [row.setl_id, mask_person(row.psn_no), row.fixmedins_code, row.setl_date, row.kind, row.field,
             "" if row.recorded is None else str(row.recorded), "" if row.recomputed is None else str(row.recomputed), row.step]
            for row in rows[:HTML_ROW_LIMIT]
        ]))
    parts.append("</body></html>\n")
    Path(path).write_text("".join(parts), encoding="utf-8")
