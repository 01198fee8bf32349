"""The document formats, one object each, and how a file name or an output format name finds its object.

Every format (see `jsonl_format`, `parquet_format`) has the same members: `name` (its output format name),
`suffixes`, `compression`, `streamed` (pieces found while reading rather than planned), `pieces_in_rows`,
`output_suffix`, `read` / `read_frame` / `read_cudf` (a whole file), `plan_pieces` / `read_piece` /
`iter_stream_pieces` (a file in pieces), `write` (a frame) and `assemble` (parts written by `write`, in
order, into one file). The driver and `DocumentDataset` both go through these, so a format is one object.
"""

from __future__ import annotations

from typing import Protocol

from hpc_classify.errors import ConfigError
from hpc_classify.io.compression import compression_of
from hpc_classify.io.jsonl_format import JsonlFormat
from hpc_classify.io.parquet_format import ParquetFormat


class DocumentFormat(Protocol):
    name: str
    suffixes: tuple[str, ...]
    compression: str | None
    streamed: bool
    pieces_in_rows: bool
    output_suffix: str


# .json is JSON Lines here as in NeMo's read_json(lines=True); compressed, it is the same format.
JSONL_GZIP = JsonlFormat("gzip", (".jsonl.gz", ".json.gz"))
JSONL_ZSTD = JsonlFormat("zstd", (".jsonl.zst", ".json.zst"))
JSONL_BZ2 = JsonlFormat("bz2", (".jsonl.bz2", ".json.bz2"))
JSONL_XZ = JsonlFormat("xz", (".jsonl.xz", ".json.xz"))
JSONL = JsonlFormat(None, (".jsonl", ".json"))
PARQUET = ParquetFormat()
# Longest suffixes first, so ".jsonl.gz" wins over a shorter match.
DOCUMENT_FORMATS = (JSONL_GZIP, JSONL_ZSTD, JSONL_BZ2, JSONL_XZ, JSONL, PARQUET)
SUPPORTED_SUFFIXES = tuple(suffix for fmt in DOCUMENT_FORMATS for suffix in fmt.suffixes)
_JSONL_BY_COMPRESSION = {fmt.compression: fmt for fmt in DOCUMENT_FORMATS if fmt.name == "jsonl"}
_OUTPUT = {"jsonl": JSONL, "parquet": PARQUET}  # keys: config.OUTPUT_FORMATS (a test holds them equal)


def document_suffix(name: str) -> str | None:
    """The supported document suffix `name` ends with (".jsonl.gz", ".parquet", ...), or None."""
    lower = str(name).lower()
    return next((s for s in SUPPORTED_SUFFIXES if lower.endswith(s)), None)


def known_format(name: str) -> DocumentFormat | None:
    """The format a supported document suffix names, or None."""
    suffix = document_suffix(name)
    return next((f for f in DOCUMENT_FORMATS if suffix in f.suffixes), None)


def format_of(path: str) -> DocumentFormat:
    """The format a file is read as: Parquet by its suffix, anything else JSONL, compressed as its last
    suffix says (".gz", ".zst", ".bz2", ".xz")."""
    if str(path).lower().endswith(PARQUET.suffixes):
        return PARQUET
    return _JSONL_BY_COMPRESSION[compression_of(path)]


def output_format(name: str) -> DocumentFormat:
    """The format of output format `name` ("jsonl": compressed as each output's suffix says)."""
    if name not in _OUTPUT:
        raise ConfigError(f"output format must be one of {', '.join(_OUTPUT)}, not {name!r}")
    return _OUTPUT[name]


def output_relpath(relpath: str, output_format_name: str) -> str:
    """The output's relpath: same name, with the suffix of the output format.

    JSONL inputs keep their suffix and compression for JSONL output (x.jsonl.gz -> x.jsonl.gz);
    otherwise the document suffix is replaced (x.jsonl.gz -> x.parquet, x.parquet -> x.jsonl).
    """
    fmt = output_format(output_format_name)
    suffix = document_suffix(relpath)
    if suffix is None:
        raise ConfigError(
            f"{relpath!r} does not end with a document suffix ({', '.join(SUPPORTED_SUFFIXES)})"
        )
    if known_format(relpath).name == fmt.name:
        return relpath
    return relpath[: -len(suffix)] + fmt.output_suffix
