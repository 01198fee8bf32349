"""Drift: how far each shard's label distribution is from the whole corpus's, as a Jensen-Shannon distance.

The distance is sqrt(JS divergence) with base-2 logarithms, so it lies in [0, 1]: 0 for a shard labelled
exactly like the corpus, 1 for a shard whose labels the corpus otherwise never has. A shard's drift is its
largest distance over the output columns (the column is named beside it); shards without rows have none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DISTANCE_NAME = "Jensen-Shannon distance (base 2, in [0, 1])"


def jensen_shannon_distances(counts: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Distance of each row of `counts` [shards, values] from `reference` [values]; rows summing to 0 -> nan."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = counts / totals
        q = np.asarray(reference, dtype=np.float64) / float(np.sum(reference))
        m = (p + q) / 2
        # 0 * log(0 / m) is 0: where a probability is 0 its term is dropped.
        p_terms = np.where(p > 0, p * np.log2(p / m), 0.0)
        q_terms = np.where(q > 0, q * np.log2(q / m), 0.0)
    divergence = 0.5 * p_terms.sum(axis=1) + 0.5 * q_terms.sum(axis=1)
    distance = np.sqrt(np.clip(divergence, 0.0, 1.0))
    return np.where(totals[:, 0] > 0, distance, np.nan)


def rank_drift(
    relpaths: Sequence[str], shard_counts: Mapping[str, Sequence[Mapping[str, int]]]
) -> list[dict[str, Any]]:
    """Shards ranked by drift, largest first (ties by relpath).

    `shard_counts[column][i]` is shard `relpaths[i]`'s value -> rows for that column. Each entry: relpath,
    distance (rounded to 6 places), column, rows (the shard's rows in that column), top_value and
    top_share (its most frequent value: a broken shard shows as one label taking most rows).
    """
    best = np.full(len(relpaths), np.nan)
    best_column = [""] * len(relpaths)
    detail: dict[str, tuple[np.ndarray, list[str]]] = {}
    for column, per_shard in shard_counts.items():
        values = sorted({value for counts in per_shard for value in counts})
        matrix = np.array(
            [[counts.get(value, 0) for value in values] for counts in per_shard], dtype=np.float64
        ).reshape(len(relpaths), len(values))
        distances = jensen_shannon_distances(matrix, matrix.sum(axis=0))
        detail[column] = (matrix, values)
        better = ~np.isnan(distances) & ~(distances <= best)  # nan in `best` compares False: taken
        for row in np.flatnonzero(better):
            best[row] = distances[row]
            best_column[row] = column
    ranking = []
    for row in np.flatnonzero(~np.isnan(best)):
        matrix, values = detail[best_column[row]]
        counts = matrix[row]
        top = int(np.argmax(counts))
        rows = int(counts.sum())
        ranking.append(
            {
                "relpath": relpaths[row],
                "distance": round(float(best[row]), 6),
                "column": best_column[row],
                "rows": rows,
                "top_value": values[top],
                "top_share": round(float(counts[top]) / rows, 4),
            }
        )
    ranking.sort(key=lambda entry: (-entry["distance"], entry["relpath"]))
    return ranking
