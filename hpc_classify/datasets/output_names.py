"""The names of `write_to_filename` outputs: NeMo Curator 0.7.1's rule, `Path(name).stem` and the format's
suffix, taken from the values of the file name column as text."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from hpc_classify.errors import DataLayoutError
from hpc_classify.io.compression import compression_of

OUTPUT_TYPES = {"jsonl": "jsonl", "parquet": "parquet", "pickle": "pkl"}


def output_name(file_name: str, fmt: str) -> str:
    """The output of an input file, by NeMo's rule, `Path(name).stem` and the format's suffix (x.jsonl,
    x.json, x.ndjson, x.txt, x -> x.jsonl; x.jsonl -> x.parquet; x.parquet -> x.jsonl; x.jsonl -> x.pkl;
    a path's directories dropped: sub/x.jsonl -> x.jsonl), except that a compressed name's `.gz`/`.zst`/`.bz2`/`.xz` is
    set aside first and JSONL keeps it: x.jsonl.gz -> x.jsonl.gz (NeMo: an uncompressed x.jsonl.jsonl) and
    x.parquet (NeMo: x.jsonl.parquet)."""
    name = PurePath(file_name).name
    compression = name[name.rfind(".") :].lower() if compression_of(name) else ""
    stem = PurePath(name[: len(name) - len(compression)]).stem
    return f"{stem}.{OUTPUT_TYPES[fmt]}{compression if fmt == 'jsonl' else ''}"


def file_name_text(value: Any, column: str) -> str:
    """A file name value as text: `str(value)` (an int 5 names 5.jsonl, as NeMo writes the values Dask made
    strings; NeMo's pathlib refuses other types), bytes decoded as UTF-8 (as Dask's string conversion decodes
    them; `str()` would give `b'x.jsonl'`)."""
    if not isinstance(value, bytes):
        return str(value)
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise DataLayoutError(
            f"a file name in column {column!r} is bytes that are not UTF-8 text ({value[:40]!r})",
            hint=f"decode column {column!r} to text yourself, or write without write_to_filename",
        ) from None
