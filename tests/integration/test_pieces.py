"""Files in pieces, on a real local Dask cluster of 2 workers: every format's pieces are shared by both
workers and assemble into exactly the whole-file output; a SIGTERM at about half, then the same command,
puts at most 1.3x the file's documents through the model (counted by the model itself), every document
once, in input order, also when the output directory moved in between."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import signal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from driver_support import (
    output_files,
    read_jsonl,
    run_args,
    run_cli,
    start_cli,
    summary,
    temp_files,
    wait_for,
)

from hpc_classify.io.markers import iter_markers
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

FORMATS = ("jsonl", "jsonl.gz", "jsonl.zst", "jsonl.bz2", "jsonl.xz", "parquet")
_DECOMPRESS = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}  # every member/stream


def write_big(root: Path, name: str, fmt: str, count: int, seed: int) -> list[str]:
    """A file of `count` documents in `fmt`; returns its ids in order."""
    texts, _ = synthetic_corpus(count, DOMAIN_LABELS, seed=seed)
    ids = [f"{name}-{i}" for i in range(count)]
    path = root / f"{name}.{fmt}"
    root.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(pa.table({"id": ids, "text": texts}), path, row_group_size=max(1, count // 8))
        return ids
    data = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts, strict=True)).encode()
    if fmt.endswith(".gz"):
        data = gzip.compress(data)
    elif fmt.endswith(".zst"):
        data = zstandard.compress(data)
    elif fmt.endswith(".bz2"):
        data = bz2.compress(data)
    elif fmt.endswith(".xz"):
        data = lzma.compress(data)
    path.write_bytes(data)
    return ids


def decompressed_size(path: Path) -> int:
    data = path.read_bytes()
    if path.suffix in _DECOMPRESS:
        return len(_DECOMPRESS[path.suffix](data))
    if path.name.endswith(".zst"):
        return len(zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 30))
    return len(data)


def read_output(path: Path) -> pd.DataFrame:
    if path.name.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.DataFrame(read_jsonl(path) if path.suffix == ".jsonl" else _read_compressed(path))


def _read_compressed(path: Path) -> list[dict]:
    data = path.read_bytes()
    if path.suffix in _DECOMPRESS:
        data = _DECOMPRESS[path.suffix](data)
    else:
        # The output of a file in pieces is one zstd frame per piece: read across frames.
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def test_every_format_in_pieces_is_shared_by_both_workers_and_equals_whole_files(tmp_path, tiny_domain_model):
    inputs = tmp_path / "in"
    expected = {
        fmt: write_big(inputs, f"big-{fmt.replace('.', '-')}", fmt, 240, seed=i)
        for i, fmt in enumerate(FORMATS)
    }
    piece_bytes = min(decompressed_size(p) for p in inputs.iterdir()) // 6
    pieced, whole = tmp_path / "pieced", tmp_path / "whole"

    first = run_cli(
        run_args(inputs, pieced, tiny_domain_model, "--workers", "2", "--piece-bytes", str(piece_bytes))
    )
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli(run_args(inputs, whole, tiny_domain_model, "--piece-bytes", "0"))
    assert second.returncode == 0, second.stderr[-3000:]

    pieced_outputs, whole_outputs = output_files(pieced), output_files(whole)
    assert pieced_outputs.keys() == whole_outputs.keys() and len(pieced_outputs) == len(FORMATS)
    ids_of = {f"big-{fmt.replace('.', '-')}": ids for fmt, ids in expected.items()}  # by input name stem
    assert {relpath.split(".", 1)[0] for relpath in pieced_outputs} == set(ids_of)
    for relpath, path in pieced_outputs.items():
        got, want = read_output(path), read_output(whole_outputs[relpath])
        # Every document once, in input order: the known ids, not only the same as the whole-file run's.
        assert got["id"].tolist() == want["id"].tolist() == ids_of[relpath.split(".", 1)[0]]
        assert got["domain_pred"].tolist() == want["domain_pred"].tolist()
    markers = {Path(m.input_path).name: m for m in iter_markers(str(pieced))}
    seekable_workers = set()
    for name, marker in markers.items():
        fmt = name.split(".", 1)[1]
        pieces = marker.extra["pieces"]
        assert len(pieces) >= 4, name
        assert sum(p["rows_in"] for p in pieces) == marker.rows_in == len(expected[fmt])
        if fmt in ("jsonl", "parquet"):  # seekable: any worker takes any piece
            seekable_workers |= {p["worker"] for p in pieces}
    # Both workers took pieces (while one streams a compressed file, the other may take a whole file's
    # pieces: the single-file tests below check that one file's pieces reach both workers).
    assert len(seekable_workers) == 2, seekable_workers
    s = summary(pieced)
    assert s["documents_in"] == sum(len(ids) for ids in expected.values())
    assert s["pieces_processed"] == sum(len(m.extra["pieces"]) for m in markers.values())
    assert not (pieced / "_pieces").exists()
    assert temp_files(pieced) == []


def counting_config(tmp_path: Path, inputs: Path, output: Path, model: Path, piece_bytes: int) -> Path:
    count_dir = tmp_path / "counts"
    count_dir.mkdir()
    config = tmp_path / "run.yaml"
    config.write_text(
        f"input: {inputs}\noutput: {output}\ndevice: cpu\npiece_bytes: {piece_bytes}\n"
        f"classifiers:\n  - classifier: mylab.counting:CountingToxicityClassifier\n"
        f"    model_dir: {model}\n    count_dir: {count_dir}\n"
    )
    return config


def done_pieces(output: Path) -> int:
    return sum(1 for _ in (output / "_pieces").rglob("*.done")) if (output / "_pieces").exists() else 0


def two_workers(config: Path) -> list[str]:
    """`run` arguments: 2 workers of 1 thread, no grace after a SIGTERM (pieces in flight are abandoned)."""
    return [
        "run",
        "--config",
        str(config),
        "--workers",
        "2",
        "--threads-per-worker",
        "1",
        "--stop-grace",
        "0",
    ]


def stop_at_half(args: list[str], output: Path, pieces: int, log: Path) -> None:
    """Run `args` and SIGTERM it once half of its file's `pieces` are done (exit 3: stopped, unfinished)."""
    proc = start_cli(args, log)
    wait_for(lambda: done_pieces(output) >= pieces // 2, timeout=300, what="half of the pieces done")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 3, log.read_text()[-3000:]
    assert not output_files(output), "the file was finished before SIGTERM: the test proved nothing"


@pytest.mark.parametrize("fmt", FORMATS)
def test_sigterm_at_half_then_rerun_classifies_at_most_1_3x_the_file(
    tmp_path, tiny_toxicity_model, user_package_path, fmt
):
    from mylab.counting import counted

    inputs, output = tmp_path / "in", tmp_path / "out"
    ids = write_big(inputs, "big", fmt, 240, seed=3)
    pieces = 16
    config = counting_config(
        tmp_path, inputs, output, tiny_toxicity_model, decompressed_size(next(inputs.iterdir())) // pieces
    )
    args = [*two_workers(config), "--progress-interval", "2"]
    stop_at_half(args, output, pieces, tmp_path / "first.log")
    # The output directory moves before the rerun (as on a requeue mounting it elsewhere): its pieces are
    # found where they are now, not at the paths their markers recorded.
    moved = tmp_path / "moved"
    output.rename(moved)
    config.write_text(config.read_text().replace(f"output: {output}", f"output: {moved}"))
    output = moved

    rerun = run_cli(args)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    total, workers = counted(str(tmp_path / "counts"))
    assert len(ids) <= total <= 1.3 * len(ids), (total, len(ids))
    (path,) = output_files(output).values()
    assert read_output(path)["id"].tolist() == ids
    if fmt in ("jsonl", "parquet"):
        assert len(workers) == 2, workers
    assert not (output / "_pieces").exists()
    assert temp_files(output) == []
