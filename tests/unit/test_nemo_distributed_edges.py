"""`hpc_classify.utils.distributed_utils` helpers at their edges, against NeMo Curator 0.7.1's own functions.

`nemo_select_columns` is NeMo 0.7.1's `select_columns` with its `_resolve_filename_col`
(nemo_curator/utils/distributed_utils.py), copied as the reference (pure pandas indexing).
"""

from __future__ import annotations

import pandas as pd
import pytest
from nemo_file_oracles import nemo_resolve_filename_col

from hpc_classify.utils.distributed_utils import select_columns


def nemo_select_columns(df, columns, filetype, add_filename):
    if filetype in ["jsonl", "json"] and columns is not None:
        if add_filename:
            filename_str = nemo_resolve_filename_col(add_filename)
            if filename_str not in columns:
                columns.append(filename_str)
        df = df[columns]
    return df


@pytest.mark.parametrize("filetype", ["jsonl", "json", "parquet", "pickle"])
@pytest.mark.parametrize("add_filename", [False, True, "path"])
@pytest.mark.parametrize("columns", [None, ["id"], ["text", "id"]])
def test_select_columns_as_nemos(filetype, add_filename, columns):
    """NeMo selects for JSON Lines only: other file types come back whole (old: selected for every type)."""
    frame = pd.DataFrame({"id": [1, 2], "text": ["a", "b"], "file_name": ["f", "f"], "path": ["p", "p"]})
    got = select_columns(frame, None if columns is None else list(columns), filetype, add_filename)
    expected = nemo_select_columns(frame, None if columns is None else list(columns), filetype, add_filename)
    pd.testing.assert_frame_equal(got, expected)
