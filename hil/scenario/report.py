"""HTML report of a run: one self-contained file (pictures inline) a person opens.

For each scenario: pass/fail, tier, time; each step with its line, result and time;
for a failed expectation the expected and the got side by side and as a line diff;
the steps never reached; and every receipt the printer got, as its picture (PNG
drawn by hil/escpos from the bytes) with the text underneath.
"""

from __future__ import annotations

import base64
import difflib
import html
import json
from pathlib import Path
from typing import Any

from hil.scenario.runner import ScenarioResult

STYLE = (
    "body{font-family:sans-serif;margin:2em} .pass{color:#176f2c} .fail{color:#b00020}"
    " .skip{color:#777} table{border-collapse:collapse} td,th{border:1px solid #ccc;"
    "padding:4px 8px;vertical-align:top} pre{margin:0;font-size:12px}"
    " .diff{display:flex;gap:1em} .diff div{flex:1} .add{background:#e6ffed}"
    " .del{background:#ffeef0} .receipts{display:flex;flex-wrap:wrap;gap:1em}"
    " figure{margin:0;border:1px solid #ddd;padding:6px;background:#fffbe6}"
    " figure img{display:block;max-width:320px;image-rendering:pixelated}"
)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, sort_keys=True)


def _pre(value: Any) -> str:
    return f"<pre>{html.escape(_json(value))}</pre>"


def diff_html(expected: Any, got: Any) -> str:
    """Expected and got side by side, then a line diff (- expected, + got)."""
    lines = difflib.unified_diff(
        _json(expected).splitlines(), _json(got).splitlines(), "expected", "got", lineterm=""
    )
    rows = []
    for line in lines:
        css = "add" if line.startswith("+") else "del" if line.startswith("-") else ""
        rows.append(f"<span class='{css}'>{html.escape(line)}</span>")
    return (
        f"<div class='diff'><div><b>expected</b>{_pre(expected)}</div>"
        f"<div><b>got</b>{_pre(got)}</div></div>"
        f"<details open><summary>diff</summary><pre>{chr(10).join(rows)}</pre></details>"
    )


def _scenario(res: ScenarioResult) -> list[str]:
    badge = "PASS" if res.ok else "FAIL"
    rows = [
        f"<h2 class='{badge.lower()}'>{badge} {html.escape(res.scenario.name)} "
        f"<small>({res.tier}, {res.seconds:.2f} s, "
        f"{html.escape(str(res.scenario.path))})</small></h2>"
    ]
    if res.error:
        rows.append(f"<p class='fail'>{html.escape(res.error)}</p>")
    rows.append(
        "<table><tr><th>step</th><th>line</th><th>result</th><th>s</th><th>detail</th></tr>"
    )
    for step in res.steps:
        if step.ok:
            detail = _pre(step.detail)
        else:
            detail = html.escape(step.error or "")
            if step.expected is not None or step.got is not None:
                detail += diff_html(step.expected, step.got)
        rows.append(
            f"<tr class='{'pass' if step.ok else 'fail'}'><td>{html.escape(step.title)}</td>"
            f"<td>{step.line}</td><td>{'ok' if step.ok else 'FAILED'}</td>"
            f"<td>{step.seconds:.3f}</td><td>{detail}</td></tr>"
        )
    for pending in res.scenario.steps[len(res.steps) :]:
        rows.append(
            f"<tr class='skip'><td>{html.escape(pending.title)}</td><td>{pending.line}</td>"
            "<td>not run</td><td></td><td></td></tr>"
        )
    rows.append("</table>")
    if res.receipts:
        rows.append(f"<h3>receipts ({len(res.receipts)})</h3><div class='receipts'>")
        for receipt in res.receipts:
            picture = ""
            if receipt.png:
                data = base64.b64encode(receipt.png).decode("ascii")
                picture = f"<img alt='receipt {receipt.number}' src='data:image/png;base64,{data}'>"
            rows.append(
                f"<figure>{picture}<figcaption>job {receipt.number}<details><summary>text"
                f"</summary><pre>{html.escape(receipt.text)}</pre></details></figcaption>"
                "</figure>"
            )
        rows.append("</div>")
    return rows


def write_report(results: list[ScenarioResult], path: Path) -> None:
    rows = [row for res in results for row in _scenario(res)]
    passed = sum(r.ok for r in results)
    total_s = sum(r.seconds for r in results)
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>HIL report</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>HIL report: {passed} of {len(results)} scenarios passed "
        f"<small>({total_s:.1f} s)</small></h1>" + "".join(rows) + "</body></html>"
    )
    path.write_text(doc, encoding="utf-8")
