"""The run report as one self-contained HTML page, rendered from `_report.json`'s dict alone.

Bokeh's scripts and styles are inlined (`bokeh.resources.Resources(mode="inline")`): compute and login nodes are often
offline, and the page must open from the cluster's file system with no network. Tables carry the exact
numbers (and `id`s, so scripts and tests can find them); charts show their shape.
"""

from __future__ import annotations

import html
import json
from typing import Any

TABLE_ROWS = 50  # rows of a long table on the page; _report.json has them all


def render_page(report: dict[str, Any]) -> str:
    from bokeh.embed import components
    from bokeh.resources import Resources

    from hpc_classify.report import charts

    figures: dict[str, Any] = {}
    for classifier in report["classifiers"]:
        for column in classifier["columns"]:
            name = column["column"]
            figures[f"labels-{name}"] = charts.label_chart(name, column["kind"], report["labels"][name])
    if report["drift"]["ranking"]:
        figures["drift"] = charts.drift_chart(report["drift"]["ranking"])
    if report["throughput"]["documents_per_second"]:
        figures["throughput"] = charts.throughput_chart(report["throughput"])
    if report["timeline"]:
        figures["timeline"] = charts.timeline_chart(report["timeline"])
    script, divs = components(figures) if figures else ("", {})
    body = "\n".join(
        [
            _overview(report),
            _labels_section(report, divs),
            _drift_section(report, divs),
            _time_section(report, divs),
            _failures_section(report),
            _provenance_section(report["provenance"]),
        ]
    )
    title = f"hpc-classify report: {report['output']}"
    return _PAGE.format(
        title=_e(title),
        # Bokeh's core only (no widgets, tables, WebGL or MathJax, which these charts never use): 1.3 MB.
        resources=Resources(mode="inline", components=["bokeh"]).render(),
        script=script,
        heading=_e(title),
        generated=_e(report["generated_at"]),
        body=body,
    )


def _overview(report: dict[str, Any]) -> str:
    files, docs = report["files"], report["documents"]
    rows = [
        ("files planned", files["planned"]),
        ("files done", files["done"]),
        ("files failed", files["failed"]),
        ("files remaining", files["remaining"]),
        ("documents in", docs["in"]),
        ("documents out", docs["out"]),
        ("bad rows (quarantined)", docs["bad"]),
    ]
    for key, label in (
        ("new", "new input files since the last run's plan (remaining)"),
        ("changed", "files whose input changed since (remaining)"),
        ("other_settings", "files marked done under other settings (remaining)"),
        ("vanished", "files whose input is gone"),
        ("done_outside_plan", "done files no longer among the inputs"),
    ):
        if files.get(key):  # reports written before `changed` and `vanished` lack them
            rows.append((label, files[key]))
    note = ""
    if files.get("inputs_checked") is False:
        note = (
            "<p><strong>Note:</strong> the inputs could not be reached from here (a copy of the output directory?): "
            "every completion marker of a planned file counts as done, changed or vanished inputs too.</p>"
        )
    return "<section><h2>Overview</h2>" + note + _table("overview", ("", "count"), rows) + "</section>"


def _labels_section(report: dict[str, Any], divs: dict[str, str]) -> str:
    parts = [
        "<section><h2>Labels</h2>",
        "<p>Rows per value over all done files (before <code>filter_by</code>).</p>",
    ]
    for classifier in report["classifiers"]:
        parts.append(f"<h3>{_e(classifier['name'])}</h3>")
        for column in classifier["columns"]:
            name = column["column"]
            counts = report["labels"][name]
            total = sum(counts.values())
            ordered = (
                counts if column["kind"] == "scores" else dict(sorted(counts.items(), key=lambda kv: -kv[1]))
            )
            rows = [(value, n, _share(n, total)) for value, n in ordered.items()]
            parts.append('<div class="pair">' + divs[f"labels-{name}"])
            parts.append(_table(f"labels-{name}", (name, "rows", "share"), rows) + "</div>")
    if not report["classifiers"]:
        parts.append("<p>No file is done yet.</p>")
    return "\n".join(parts) + "</section>"


def _drift_section(report: dict[str, Any], divs: dict[str, str]) -> str:
    ranking = report["drift"]["ranking"]
    parts = [
        "<section><h2>Drift</h2>",
        f"<p>Each shard's label distribution against the whole corpus's, as the {_e(report['drift']['distance'])};"
        " a shard's drift is its largest distance over the output columns. Small shards drift by chance:"
        " read the distance beside the rows.</p>",
    ]
    if not ranking:
        return "\n".join([*parts, "<p>No shard with rows yet.</p></section>"])
    rows = [
        (
            i + 1,
            e["relpath"],
            f"{e['distance']:.4f}",
            e["column"],
            e["rows"],
            f"{e['top_value']} ({e['top_share']:.1%})",
        )
        for i, e in enumerate(ranking[:TABLE_ROWS])
    ]
    parts.append(divs["drift"])
    parts.append(_table("drift", ("rank", "shard", "distance", "column", "rows", "most frequent"), rows))
    parts.append(_more(len(ranking)))
    return "\n".join(parts) + "</section>"


def _time_section(report: dict[str, Any], divs: dict[str, str]) -> str:
    parts = ["<section><h2>Throughput and timeline</h2>"]
    dask = report["dask_report"]
    if dask:
        parts.append(
            f'<p><a id="dask-report" href="{_e(dask["file"])}">Dask\'s performance report</a> (task stream, '
            f"worker profiles) of the last run with <code>--dask-report</code>, written {_e(dask['written_at'])}.</p>"
        )
    without = report["files"]["without_times"]
    if without:
        parts.append(f"<p>{without} marker(s) record no start or end time and are left out here.</p>")
    if "throughput" in divs:
        parts.append(divs["throughput"])
    if "timeline" in divs:
        parts.append(divs["timeline"])
        rows = [(w["worker"], w["files"], f"{w['busy_seconds']:.1f}") for w in report["timeline"]]
        parts.append(_table("workers", ("node/worker", "files", "busy seconds"), rows))
    else:
        parts.append("<p>No timed file yet.</p>")
    return "\n".join(parts) + "</section>"


def _failures_section(report: dict[str, Any]) -> str:
    failures, quarantine = report["failures"], report["quarantine"]
    parts = ["<section><h2>Failures and quarantined rows</h2>", f"<h3>Failed files: {failures['files']}</h3>"]
    rows = [
        (
            group["error_type"],
            group["count"],
            _file_list([f"{f['relpath']}: {f['error']}" for f in group["files"]]),
        )
        for group in failures["by_type"]
    ]
    parts.append(_table("failures", ("error type", "files", "which (first error line)"), rows, raw_last=True))
    parts.append(f"<h3>Quarantined rows: {quarantine['rows']}</h3>")
    parts.append(_table("quarantine-kinds", ("problem", "rows"), list(quarantine["by_kind"].items())))
    files = [
        (q["relpath"], q["rows_bad"], q["quarantine_path"] or "") for q in quarantine["files"][:TABLE_ROWS]
    ]
    parts.append(_table("quarantine-files", ("file", "bad rows", "quarantine file"), files))
    parts.append(_more(len(quarantine["files"])))
    return "\n".join(parts) + "</section>"


def _provenance_section(provenance: dict[str, Any]) -> str:
    rows = [
        ("package version (run)", provenance["package_version"]),
        ("report written by", provenance["report_by"]),
        ("run fingerprint", provenance["fingerprint"]),
        ("markers per fingerprint", json.dumps(provenance["marker_fingerprints"])),
        ("inputs", " ".join(provenance["inputs"])),
        ("command (last run)", provenance["command"] or "(not recorded)"),
    ]
    for key, value in (provenance["last_run"] or {}).items():
        rows.append((f"last run: {key}", value))
    models = [
        (m["class"], json.dumps(m["model"], sort_keys=True), m["precision"], ", ".join(m["columns"] or []))
        for m in provenance["models"]
    ]
    return "\n".join(
        [
            "<section><h2>Provenance</h2>",
            _table("provenance", ("", ""), rows),
            "<h3>Models</h3>",
            _table(
                "models", ("classifier", "model, revision, checkpoint hash", "precision", "columns"), models
            ),
            "<h3>Settings</h3>",
            f"<pre>{_e(json.dumps(provenance['settings'], indent=2, sort_keys=True))}</pre>",
            "</section>",
        ]
    )


def _table(
    table_id: str, header: tuple[str, ...], rows: list[tuple[Any, ...]], *, raw_last: bool = False
) -> str:
    """A table of escaped cells (`raw_last`: the last cell is already HTML)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = [f"<td>{_e(c)}</td>" for c in row]
        if raw_last:
            cells[-1] = f"<td>{row[-1]}</td>"
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{_e(table_id)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _file_list(lines: list[str]) -> str:
    shown = "".join(f"<li>{_e(line)}</li>" for line in lines[:TABLE_ROWS])
    rest = (
        f"<li>... and {len(lines) - TABLE_ROWS} more (_report.json)</li>" if len(lines) > TABLE_ROWS else ""
    )
    return f"<ul>{shown}{rest}</ul>"


def _more(total: int) -> str:
    return f"<p>{total - TABLE_ROWS} more in <code>_report.json</code>.</p>" if total > TABLE_ROWS else ""


def _share(n: int, total: int) -> str:
    return f"{n / total:.1%}" if total else "-"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }}
section {{ margin-bottom: 2.5em; }}
table {{ border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }}
th {{ background: #f2f2f2; }}
.pair {{ display: grid; grid-template-columns: 2fr 1fr; gap: 1em; align-items: start; }}
pre {{ background: #f7f7f7; padding: 0.6em; overflow-x: auto; }}
ul {{ margin: 0; padding-left: 1.2em; }}
</style>
{resources}
{script}
</head>
<body>
<h1>{heading}</h1>
<p>Written {generated} from the completion markers, <code>_plan.json</code>, <code>_run.json</code>,
<code>_summary.json</code> and <code>_failures.ndjson</code>; the numbers are in <code>_report.json</code> beside this page.</p>
{body}
</body>
</html>
"""
