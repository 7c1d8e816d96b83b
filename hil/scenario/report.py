"""HTML report of a run: each scenario, each step with timings, expected vs got."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from hil.scenario.runner import ScenarioResult


def _pre(value: Any) -> str:
    return f"<pre>{html.escape(json.dumps(value, indent=2, default=str))}</pre>"


def write_report(results: list[ScenarioResult], path: Path) -> None:
    rows = []
    for res in results:
        badge = "PASS" if res.ok else "FAIL"
        rows.append(
            f"<h2 class='{badge.lower()}'>{badge} {html.escape(res.scenario.name)} "
            f"<small>({res.tier}, {res.seconds:.2f} s, "
            f"{html.escape(str(res.scenario.path))})</small></h2>"
        )
        if res.error:
            rows.append(f"<p class='fail'>{html.escape(res.error)}</p>")
        rows.append(
            "<table><tr><th>step</th><th>line</th><th>result</th><th>s</th><th>detail</th></tr>"
        )
        for step in res.steps:
            detail = (
                _pre(step.detail)
                if step.ok
                else (
                    f"{html.escape(step.error or '')}"
                    + (
                        f"<div class='diff'><b>expected</b>{_pre(step.expected)}"
                        f"<b>got</b>{_pre(step.got)}</div>"
                        if step.expected is not None or step.got is not None
                        else ""
                    )
                )
            )
            rows.append(
                f"<tr class='{'pass' if step.ok else 'fail'}'><td>{html.escape(step.title)}</td>"
                f"<td>{step.line}</td><td>{'ok' if step.ok else 'FAILED'}</td>"
                f"<td>{step.seconds:.3f}</td><td>{detail}</td></tr>"
            )
        not_run = res.scenario.steps[len(res.steps) :]
        for pending in not_run:
            rows.append(
                f"<tr class='skip'><td>{html.escape(pending.title)}</td><td>{pending.line}</td>"
                "<td>not run</td><td></td><td></td></tr>"
            )
        rows.append("</table>")
        for receipt in res.receipts:
            rows.append(f"<h3>receipt</h3><pre class='receipt'>{html.escape(receipt)}</pre>")
    passed = sum(r.ok for r in results)
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'><title>HIL report</title><style>"
        "body{font-family:sans-serif;margin:2em} .pass{color:#176f2c} .fail{color:#b00020}"
        " .skip{color:#777} table{border-collapse:collapse} td,th{border:1px solid #ccc;"
        "padding:4px 8px;vertical-align:top} pre{margin:0;font-size:12px}"
        " .receipt{background:#fffbe6;padding:8px;display:inline-block}</style></head><body>"
        f"<h1>HIL report: {passed} of {len(results)} scenarios passed</h1>"
        + "".join(rows)
        + "</body></html>"
    )
    path.write_text(doc, encoding="utf-8")
