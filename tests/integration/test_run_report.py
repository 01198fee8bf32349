"""The run report (`_report.json`, `_report.html`) of a real run: one shard worded for a single topic must
rank first in drift, and every count in the JSON and on the page must equal the markers' (computed here
from the marker files directly). The page is opened in real headless Chromium: charts drawn, no JS error.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest
from driver_support import make_corpus, run_args, run_cli

OFF_SHARD = "part-off.jsonl"
OFF_TOPIC = "Games"


def write_off_shard(path: Path, rows: int) -> None:
    """Documents worded only with one topic's words: the tiny model labels nearly all of them alike."""
    from hpc_classify.models.tiny import DOMAIN_LABELS, topic_vocabulary

    words = topic_vocabulary(DOMAIN_LABELS)[OFF_TOPIC]
    rng = random.Random(7)
    lines = [
        json.dumps(
            {"id": f"off-{n}", "text": " ".join(rng.choice(words) for _ in range(30)).capitalize() + "."}
        )
        for n in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_domain_model) -> Path:
    """A run over 5 ordinary shards (one with 2 bad rows, quarantined), the off shard, and a corrupt .gz
    file that fails; `--on-bad-row skip --dask-report`. Returns its output directory."""
    root = tmp_path_factory.mktemp("report-run")
    inputs, output = root / "in", root / "out"
    make_corpus(inputs, n_files=5, docs_per_file=12, bad_lines={1: ["not json", '{"id": "no text"}']})
    write_off_shard(inputs / OFF_SHARD, 14)
    (inputs / "part-broken.jsonl.gz").write_bytes(b"this is not gzip data")
    result = run_cli(run_args(inputs, output, tiny_domain_model, "--on-bad-row", "skip", "--dask-report"))
    assert result.returncode == 1, result.stderr[-3000:]  # the corrupt file failed, the rest are done
    return output


def marker_files(output: Path) -> dict[str, dict]:
    """relpath -> the marker's JSON, read here without the package's marker code."""
    root = output / "_markers"
    return {
        str(path.relative_to(root))[: -len(".done.json")]: json.loads(path.read_text())
        for path in root.rglob("*.done.json")
    }


def js_distance(p_counts: dict[str, int], q_counts: dict[str, int]) -> float:
    """Jensen-Shannon distance, base 2, written out term by term (independent of the report's numpy)."""
    p_total, q_total = sum(p_counts.values()), sum(q_counts.values())
    divergence = 0.0
    for value in set(p_counts) | set(q_counts):
        p, q = p_counts.get(value, 0) / p_total, q_counts.get(value, 0) / q_total
        m = (p + q) / 2
        divergence += 0.5 * (p * math.log2(p / m) if p else 0.0) + 0.5 * (q * math.log2(q / m) if q else 0.0)
    return math.sqrt(max(divergence, 0.0))


class TableParser(HTMLParser):
    """Every <table id=...> of the page as a list of rows of cell texts (header row excluded)."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id")
            self.tables[self._table] = []
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "thead":
            self._in_head = False
        elif tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def page_tables(output: Path) -> dict[str, list[list[str]]]:
    parser = TableParser()
    parser.feed((output / "_report.html").read_text(encoding="utf-8"))
    return parser.tables


def test_report_counts_equal_the_markers_and_the_off_shard_drifts_most(finished_run):
    output = finished_run
    markers = marker_files(output)
    report = json.loads((output / "_report.json").read_text())
    tables = page_tables(output)

    assert OFF_SHARD in markers and "part-broken.jsonl.gz" not in markers
    totals: dict[str, Counter] = defaultdict(Counter)
    for marker in markers.values():
        for column, counts in marker["label_counts"].items():
            totals[column].update(counts)
    docs_in = sum(m["rows_in"] for m in markers.values())
    docs_out = sum(m["rows_out"] for m in markers.values())
    bad = sum(m["rows_bad"] for m in markers.values())
    assert bad == 2

    # _report.json
    assert report["files"] == {
        "planned": 7,
        "new": 0,
        "done": len(markers),
        "done_outside_plan": 0,
        "changed": 0,
        "other_settings": 0,
        "vanished": 0,
        "failed": 1,
        "remaining": 0,
        "without_times": 0,
        "inputs_checked": True,
    }
    assert report["documents"] == {"in": docs_in, "out": docs_out, "bad": bad}
    assert report["labels"] == {column: dict(counts) for column, counts in totals.items()}

    # drift: the same distances and order as computed here, the off shard first
    corpus = totals["domain_pred"]
    expected = sorted(
        ((js_distance(m["label_counts"]["domain_pred"], corpus), rel) for rel, m in markers.items()),
        key=lambda pair: (-pair[0], pair[1]),
    )
    ranking = report["drift"]["ranking"]
    assert [entry["relpath"] for entry in ranking] == [rel for _, rel in expected]
    assert [entry["distance"] for entry in ranking] == pytest.approx([d for d, _ in expected], abs=1e-6)
    assert ranking[0]["relpath"] == OFF_SHARD
    off_counts = markers[OFF_SHARD]["label_counts"]["domain_pred"]
    assert ranking[0]["top_value"] == max(off_counts, key=off_counts.get)
    assert ranking[0]["rows"] == markers[OFF_SHARD]["rows_in"]

    # throughput integrates to the documents; the timeline holds every file once
    series = report["throughput"]
    assert sum(series["documents_per_second"]) * series["bin_seconds"] == pytest.approx(docs_in, rel=1e-3)
    per_worker = Counter(f"{m['node']}/{m['worker']}" for m in markers.values())
    assert {w["worker"]: w["files"] for w in report["timeline"]} == dict(per_worker)

    # failures and quarantine (the quarantine file's reasons, read here, against the marker's kinds)
    failures = [json.loads(line) for line in (output / "_failures.ndjson").read_text().splitlines()]
    assert [(g["error_type"], g["count"]) for g in report["failures"]["by_type"]] == [
        (failures[0]["error_type"], 1)
    ]
    assert report["failures"]["by_type"][0]["files"][0]["relpath"] == "part-broken.jsonl.gz"
    quarantined = [m for m in markers.values() if m["rows_bad"]]
    assert len(quarantined) == 1
    reasons = Counter(
        json.loads(line)["reason"].split(" (")[0]
        for line in Path(quarantined[0]["quarantine_path"]).read_text().splitlines()
    )
    assert report["quarantine"]["by_kind"] == dict(reasons) and sum(reasons.values()) == 2
    assert [(q["relpath"], q["rows_bad"]) for q in report["quarantine"]["files"]] == [("part-001.jsonl", 2)]

    # the page: every count table equals the markers'
    overview = {row[0]: int(row[1]) for row in tables["overview"]}
    assert overview == {
        "files planned": 7,
        "files done": len(markers),
        "files failed": 1,
        "files remaining": 0,
        "documents in": docs_in,
        "documents out": docs_out,
        "bad rows (quarantined)": bad,
    }
    assert {row[0]: int(row[1]) for row in tables["labels-domain_pred"]} == dict(corpus)
    assert [row[1] for row in tables["drift"]] == [rel for _, rel in expected]
    assert [int(row[4]) for row in tables["drift"]] == [markers[rel]["rows_in"] for _, rel in expected]
    assert {row[0]: int(row[1]) for row in tables["workers"]} == dict(per_worker)
    assert [(row[0], int(row[1])) for row in tables["failures"]] == [(failures[0]["error_type"], 1)]
    assert {row[0]: int(row[1]) for row in tables["quarantine-kinds"]} == dict(reasons)
    assert [(row[0], int(row[1])) for row in tables["quarantine-files"]] == [("part-001.jsonl", 2)]
    provenance = {row[0]: row[1] for row in tables["provenance"]}
    run_file = json.loads((output / "_run.json").read_text())
    assert provenance["run fingerprint"] == run_file["fingerprint"]
    assert "run --input" in provenance["command (last run)"]
    # --dask-report: Dask's own page, linked from ours
    assert report["dask_report"]["file"] == "_dask-report.html"
    dask_page = (output / "_dask-report.html").read_text(encoding="utf-8")
    assert "Dask Performance Report" in dask_page
    assert "cdn.bokeh.org" not in dask_page  # inlined: opens offline like ours
    assert 'href="_dask-report.html"' in (output / "_report.html").read_text(encoding="utf-8")


def test_report_command_rewrites_the_same_numbers(finished_run, tmp_path):
    output = tmp_path / "copy"
    shutil.copytree(finished_run, output)
    before = json.loads((output / "_report.json").read_text())
    (output / "_report.json").unlink()
    (output / "_report.html").unlink()

    result = run_cli(["report", "--output", str(output)], timeout=300)

    assert result.returncode == 0, result.stderr[-3000:]
    after = json.loads((output / "_report.json").read_text())
    for key in ("files", "documents", "labels", "timeline", "failures", "quarantine", "dask_report"):
        assert after[key] == before[key], key
    assert [e["relpath"] for e in after["drift"]["ranking"]] == [
        e["relpath"] for e in before["drift"]["ranking"]
    ]


def test_report_of_a_directory_without_a_run_is_a_clear_error(tmp_path):
    result = run_cli(["report", "--output", str(tmp_path)], timeout=120)
    assert result.returncode == 2
    assert "no _plan.json" in result.stderr and "--output directory of a run" in result.stderr


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (scripts/bootstrap.sh --test)"
)
def test_page_renders_its_charts_in_headless_chromium(finished_run, tmp_path):
    from PIL import Image

    from hpc_classify.report.charts import BAR_COLOR, DRIFT_COLOR

    page = (finished_run / "_report.html").as_uri()
    base = [
        "chromium",
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--user-data-dir=" + str(tmp_path / "profile"),
    ]
    dom = subprocess.run(
        [*base, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", "--dump-dom", page],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert dom.returncode == 0, dom.stderr[-3000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert any("document idle" in line for line in console), "\n".join(console) or dom.stderr[-3000:]
    assert not [line for line in console if "ERROR:CONSOLE" in line or "Uncaught" in line], console
    # Bokeh adds a bk-Figure element per drawn chart: labels, drift, throughput, timeline.
    assert dom.stdout.count('class="bk-Figure') == 4, dom.stdout[-2000:]

    shot = tmp_path / "page.png"
    done = subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1200,2400", "--virtual-time-budget=15000", page],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0 and shot.exists(), done.stderr[-3000:]
    colors = Counter(Image.open(shot).convert("RGB").getdata())
    for color in (BAR_COLOR, DRIFT_COLOR):  # the canvases drew bars: tables and text never use these colors
        rgb = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
        assert colors[rgb] > 500, f"no {color} bars on the screenshot"
