"""An output directory reads as a dataset: after a run with a failed file and quarantined rows, `OUT/*.jsonl`
globs and pyarrow/pandas readers of `OUT` see the outputs only, none of the run's bookkeeping."""

from __future__ import annotations

import glob
import gzip
import json

import pytest
from driver_support import read_jsonl, run_args, run_cli


def _corpus(inputs):
    good = "".join(json.dumps({"id": i, "text": f"sports game {i}"}) + "\n" for i in range(3))
    (inputs / "sub").mkdir(parents=True)
    (inputs / "a.jsonl").write_text(good + "{not json\n")  # one row quarantined
    (inputs / "sub" / "c.jsonl").write_text("{not json\n" + good)
    (inputs / "b.jsonl").write_bytes(gzip.compress(good.encode()))  # fails: gzip named .jsonl


@pytest.mark.parametrize("output_format", ["jsonl", "parquet"])
def test_a_failed_run_directory_reads_as_exactly_its_outputs(tmp_path, tiny_domain_model, output_format):
    inputs, out = tmp_path / "in", tmp_path / "out"
    _corpus(inputs)
    args = ["--on-bad-row", "skip", "--output-format", output_format]

    result = run_cli(run_args(inputs, out, tiny_domain_model, *args))

    assert result.returncode == 1, result.stderr[-3000:]
    suffix = output_format
    assert sorted(glob.glob(str(out / f"*.{suffix}"))) == [str(out / f"a.{suffix}")]
    assert sorted(glob.glob(str(out / "**" / f"*.{suffix}"), recursive=True)) == [
        str(out / f"a.{suffix}"),
        str(out / "sub" / f"c.{suffix}"),
    ]
    if output_format == "parquet":
        import pandas as pd
        import pyarrow.dataset as ds

        assert ds.dataset(str(out)).count_rows() == 6
        assert sorted(pd.read_parquet(str(out))["id"]) == [0, 0, 1, 1, 2, 2]
    assert [f["relpath"] for f in read_jsonl(out / "_failures.ndjson")] == ["b.jsonl"]
    assert (
        len(
            read_jsonl(
                out / "_a.jsonl.quarantine" if output_format == "jsonl" else out / "_a.parquet.quarantine"
            )
        )
        == 1
    )
