"""NeMo Curator 0.7.1's `reshard_jsonl`: the files under a directory cut into shards of about a size.

As NeMo's: the files are read as text by `dask.bag.read_text` with the size as its `blocksize`, so each file
is cut, at line ends, into `size // blocksize` blocks (at least one; small files are not joined); each block
is one output `<file_prefix><start_index + block, 5 digits>.jsonl` in `output_dir`, its lines stripped of
surrounding whitespace and joined by newlines (no newline after the last); a block with no text writes no
file (its number is skipped). Listing as `get_all_files_paths_under` (hidden and `_`-prefixed files skipped).

Unlike NeMo's: each shard is written atomically; a size NeMo misreads is an error (`parse_str_of_num_bytes`),
and so are a size below one byte, an empty directory and compressed files (NeMo: Dask's "No files found" or
"Cannot do chunked reads on compressed files", or a size below one byte that never ends).
"""

from __future__ import annotations

import contextlib
import os

import dask
import dask.bag as db
from fsspec.utils import infer_compression

from hpc_classify.errors import ConfigError, DataLayoutError
from hpc_classify.io.nemo_file_helpers import parse_str_of_num_bytes
from hpc_classify.io.nemo_files import expand_outdir_and_mkdir, get_all_files_paths_under
from hpc_classify.io.writers import write_atomically

SHARD_DIGITS = 5  # NeMo's int(np.log10(max_index) + 1) with max_index=10000: at least 5 digits


def reshard_jsonl(
    input_dir: str,
    output_dir: str,
    output_file_size: str = "100M",
    start_index: int = 0,
    file_prefix: str = "",
) -> None:
    """Reshard the files under `input_dir` into `output_dir` (see the module docstring); `output_file_size`
    as "100M" (K, M or G, powers of 1024)."""
    blocksize = parse_str_of_num_bytes(output_file_size)
    if blocksize < 1:
        raise ConfigError(
            f"output_file_size={output_file_size!r} is below one byte", hint="give a size such as '100M'"
        )
    input_files = list(get_all_files_paths_under(input_dir))
    if not input_files:
        raise ConfigError(
            f"no files to reshard under {input_dir}", hint="pass the directory that holds the files"
        )
    compressed = [p for p in input_files if infer_compression(p)]
    if compressed:
        raise DataLayoutError(
            f"{len(compressed)} compressed file(s) cannot be cut into shards (e.g. {compressed[0]})",
            hint="decompress them first, or move them out of the directory",
        )
    bag = db.read_text(input_files, blocksize=blocksize)
    output_dir = expand_outdir_and_mkdir(output_dir)
    write = dask.delayed(_write_shard, pure=False)
    names = [
        f"{file_prefix}{str(start_index + i).rjust(SHARD_DIGITS, '0')}.jsonl" for i in range(bag.npartitions)
    ]
    dask.compute(
        *[
            write(block, os.path.join(output_dir, name))
            for block, name in zip(bag.to_delayed(), names, strict=True)
        ]
    )


def _write_shard(lines: list[str], path: str) -> None:
    text = "\n".join(line.strip() for line in lines)
    if not text:  # NeMo writes the empty file, then removes it
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        return
    data = text.encode("utf-8")
    write_atomically(path, lambda f: f.write(data))
