"""What the first bytes of a JSONL file's text say about the whole file: compressed data under a name that
says plain text, or text in UTF-16/UTF-32 rather than UTF-8. Read line by line, such a file had every line
a bad row ("invalid UTF-8"), each quarantined under --on-bad-row skip: one error for the file says what it
is and how to make it readable, and is not retried (the same bytes fail the same way)."""

from __future__ import annotations

import os
from typing import BinaryIO

from hpc_classify.errors import InputFileError

HEAD_BYTES = 6  # enough for every signature below

# (magic, name, the suffix that reads it here): a valid JSON line never starts with these bytes.
_COMPRESSED = (
    (b"\x1f\x8b", "gzip", ".jsonl.gz"),
    (b"\x28\xb5\x2f\xfd", "zstd", ".jsonl.zst"),
    (b"BZh", "bzip2", ".jsonl.bz2"),
    (b"\xfd7zXZ\x00", "xz", ".jsonl.xz"),
)
# compression_of's name -> (its command-line tool, its suffix)
_TOOLS = {"gzip": ("gzip", ".gz"), "zstd": ("zstd", ".zst"), "bz2": ("bzip2", ".bz2"), "xz": ("xz", ".xz")}
# Byte order marks, longest first: UTF-32-LE's starts with UTF-16-LE's.
_WIDE_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)


def check_jsonl_head(path: str, stream: BinaryIO, compression: str | None) -> None:
    """InputFileError when the text `stream` opens with (decompressed as `compression` says, None: plain)
    is compressed data or UTF-16/UTF-32. Reads nothing from the stream: it peeks (plain files, our zstd reader
    and Python's gzip, bz2 and lzma readers are buffered)."""
    head = stream.peek(HEAD_BYTES)[:HEAD_BYTES]
    problem = _compressed(path, head, compression) or _wide_text(path, head, compression)
    if problem is not None:
        raise problem


def _compressed(path: str, head: bytes, compression: str | None) -> InputFileError | None:
    for magic, name, suffix in _COMPRESSED:
        if not head.startswith(magic) or (name == "bzip2" and head[3:4] not in b"123456789"):
            continue
        if compression is not None:
            return InputFileError(
                path,
                f"its {compression} data holds {name}-compressed data again (compressed twice)",
                hint="decompress it once and give the result the suffix of what it then holds "
                "(.jsonl, .jsonl.gz, .jsonl.zst, .jsonl.bz2 or .jsonl.xz)",
            )
        return InputFileError(
            path,
            f"this file is {name}-compressed, but its name says plain JSONL (the suffix decides how a "
            "file is read)",
            hint=f"name it {_stem(path)}{suffix}",
        )
    return None


def _wide_text(path: str, head: bytes, compression: str | None) -> InputFileError | None:
    """UTF-16 or UTF-32 text, by its byte order mark or, without one, by the NUL bytes beside the first
    character (JSON text starts with an ASCII character: `{`, or blank space)."""
    found = next((name for bom, name in _WIDE_BOMS if head.startswith(bom)), None)
    if found is None and len(head) >= 4:
        a, b, c, d = head[:4]
        if a == b == c == 0 and 0 < d < 0x80:
            found = "UTF-32BE"
        elif 0 < a < 0x80 and b == c == d == 0:
            found = "UTF-32LE"
        elif a == 0 and 0 < b < 0x80:
            found = "UTF-16BE"
        elif 0 < a < 0x80 and b == 0:
            found = "UTF-16LE"
    if found is None:
        return None
    name, stem = os.path.basename(path), _stem(path)
    convert = f"iconv -f {found} -t UTF-8"
    if compression is None:
        example = f"{convert} {name} > {stem}.utf8.jsonl"
    else:
        tool, suffix = _TOOLS[compression]
        example = f"{tool} -dc {name} | {convert} | {tool} > {stem}.utf8.jsonl{suffix}"
    what = "this file's decompressed text" if compression else "this file"
    return InputFileError(
        path,
        f"{what} is {found} text; JSONL files are read as UTF-8",
        hint=f"convert it to UTF-8, e.g. {example}, and classify that file instead",
    )


def _stem(path: str) -> str:
    """The file's name without its compression and JSON suffixes (`a.jsonl.bz2` -> `a`)."""
    name = os.path.basename(path)
    for suffixes in (tuple(suffix for _tool, suffix in _TOOLS.values()), (".jsonl", ".json")):
        name = next((name[: -len(s)] for s in suffixes if name.lower().endswith(s)), name)
    return name
