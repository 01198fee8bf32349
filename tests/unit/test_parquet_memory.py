"""Parquet reads and assembly bounded in memory and open files, whatever the file's size or part count."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import hpc_classify


def test_assembling_more_parts_than_the_open_files_limit_succeeds(tmp_path):
    # Each part held open at once would exceed the limit (EMFILE), as a file of over a thousand pieces
    # does under a cluster's usual soft limit of 1024.
    parts = []
    for i in range(200):
        path = tmp_path / f"part-{i:04d}.parquet"
        pq.write_table(pa.table({"id": [2 * i, 2 * i + 1], "text": [f"a{i}", f"b{i}"]}), path)
        parts.append(str(path))
    out = tmp_path / "out.parquet"
    script = textwrap.dedent(
        f"""
        import resource, sys
        from hpc_classify.io.formats import PARQUET
        parts = {parts!r}
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        with open({str(out)!r}, "wb") as f:
            PARQUET.assemble(parts, f)
        """
    )
    root = str(Path(hpc_classify.__file__).resolve().parent.parent)  # this checkout's package, in the child
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    got = pd.read_parquet(out)
    assert got["id"].tolist() == list(range(400))
    assert got["text"].tolist() == [f"{c}{i}" for i in range(200) for c in "ab"]
