"""Files in pieces through the Slurm launcher on the real test cluster (three emulated nodes): one file's
pieces are classified on every node, and a USR1 at about half (time limit near) requeues the job, which
resumes with the pieces done: the model sees at most 1.3x the file's documents, every one written once, in
input order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_launcher import job_log, submit_classify, wait_until

from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

DOCUMENTS = 240
PIECES = 12


def write_file(root: Path, fmt: str) -> tuple[Path, list[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir()
    texts, _ = synthetic_corpus(DOCUMENTS, DOMAIN_LABELS, seed=5)
    ids = [f"d{i}" for i in range(DOCUMENTS)]
    path = root / f"big.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.table({"id": ids, "text": texts}), path, row_group_size=DOCUMENTS // PIECES)
    else:
        path.write_text(
            "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts, strict=True))
        )
    return path, ids


def read_ids(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path)["id"].tolist()
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def pieces_done(out: Path) -> int:
    return sum(1 for _ in (out / "_pieces").rglob("*.done")) if (out / "_pieces").exists() else 0


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_one_file_in_pieces_on_three_nodes_survives_usr1_and_requeue(
    slurm_cluster, tiny_toxicity_model, user_package_path, tmp_path, fmt
) -> None:
    from mylab.counting import counted

    source, ids = write_file(tmp_path / "in", fmt)
    out, counts = tmp_path / "out", tmp_path / "counts"
    counts.mkdir()
    piece_bytes = source.stat().st_size // PIECES
    config = tmp_path / "run.yaml"
    config.write_text(
        f"input: {source.parent}\noutput: {out}\ndevice: cpu\npiece_bytes: {piece_bytes}\n"
        f"output_format: {fmt}\nclassifiers:\n  - classifier: mylab.counting:CountingToxicityClassifier\n"
        f"    model_dir: {tiny_toxicity_model}\n    count_dir: {counts}\n"
    )
    job = submit_classify(
        slurm_cluster, tmp_path, ["--config", str(config)], env={"PYTHONPATH": user_package_path}
    )
    # Pieces left for certain when the warning comes: from a few done on, every piece waits at the hold
    # until the driver has the warning (the second half took 2 s here, the warning's way up to 1 s).
    wait_until(lambda: pieces_done(out) >= PIECES // 4, 300, "a quarter of the pieces done")
    (counts / "hold").touch()
    slurm_cluster.run(["scancel", "--signal=USR1", "--batch", job])
    wait_until(lambda: "SIGUSR1 received" in job_log(tmp_path, job), 120, "the driver to have the warning")
    (counts / "hold").unlink()

    assert slurm_cluster.wait_job(job, timeout=400) == "COMPLETED", job_log(tmp_path, job)
    assert slurm_cluster.job_info(job)["Restarts"] == "1", job_log(tmp_path, job)
    assert read_ids(out / source.name) == ids
    total, _ = counted(str(counts))
    assert len(ids) <= total <= 1.3 * len(ids), (total, len(ids))
    (marker,) = [json.loads(p.read_text()) for p in (out / "_markers").glob("*.done.json")]
    pieces = marker["extra"]["pieces"]
    assert sorted(p["piece"] for p in pieces) == list(range(len(pieces)))
    assert {p["node"] for p in pieces} == {"node1", "node2", "node3"}
    assert not (out / "_pieces").exists()
    assert [p for p in out.rglob("*") if ".tmp-" in p.name] == []
