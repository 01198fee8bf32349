"""A completion marker for a planned file, as a finished task would have written it (unit tests that need
one on disk without classifying anything)."""

from __future__ import annotations

from hpc_classify.driver.plan import PlannedFile
from hpc_classify.io.markers import CompletionMarker


def marker_of(
    planned: PlannedFile, *, size: int | None = None, mtime: float | None = None
) -> CompletionMarker:
    """The marker of `planned` as it is now; `size`/`mtime`: of another version of the file."""
    return CompletionMarker(
        input_path=planned.path,
        input_size=planned.size if size is None else size,
        input_mtime=planned.mtime if mtime is None else mtime,
        output_path=planned.path + ".out",
        rows_in=1,
        rows_out=1,
        rows_bad=0,
        label_counts={},
        seconds=0.0,
        node="n",
        worker="w",
        fingerprint="f",
    )
