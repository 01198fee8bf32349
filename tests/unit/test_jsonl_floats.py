"""float32 values (scores, probabilities) in JSONL output: the fewest digits that read back as the same
float32, not the float64 expansion of each (`0.10000000149011612`); non-finite values null."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from hpc_classify.io.writers import write_frame


def test_float32_columns_and_arrays_are_written_short_and_read_back_identical(tmp_path):
    rng = np.random.default_rng(7)
    scores = rng.random(500).astype(np.float32)
    scores[[3, 4]] = [np.nan, np.inf]
    probabilities = [rng.dirichlet(np.ones(26)).astype(np.float32) for _ in range(500)]
    frame = pd.DataFrame({"score": scores, "probs": probabilities, "exact": scores.astype(np.float64)})
    path = str(tmp_path / "out.jsonl")
    write_frame(frame, path, "jsonl")

    lines = open(path, encoding="utf-8").read().splitlines()
    rows = [json.loads(line) for line in lines]
    read_scores = np.array([np.nan if r["score"] is None else r["score"] for r in rows], dtype=np.float32)
    finite = np.isfinite(scores)
    assert np.array_equal(read_scores[finite], scores[finite])
    assert [r["score"] for r in rows][3:5] == [None, None]
    assert all(
        np.array_equal(np.array(r["probs"], dtype=np.float32), p)
        for r, p in zip(rows, probabilities, strict=True)
    )
    # float64 keeps its own exact repr: the float32 value's expansion, as the user gave it.
    assert [r["exact"] for r in rows if r["exact"] is not None] == scores.astype(np.float64)[finite].tolist()
    # Each float32 is written as numpy's shortest text for it (e.g. 0.1, not 0.10000000149011612).
    assert json.loads(lines[0])["score"] == float(str(scores[0]))
