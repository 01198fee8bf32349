"""An input directory named like a pieces directory (`big.jsonl.pieces/`, beside an input `big.jsonl`): the
pieces of its files go to `_pieces/big.jsonl.pieces+/`, never inside `big.jsonl`'s own pieces directory, which
its assembly removes (driver/piece_files.py); both files in pieces come out whole, every document once."""

from __future__ import annotations

from driver_support import output_files, run_args, run_cli, summary, temp_files
from test_pieces import decompressed_size, read_output, write_big


def test_a_directory_named_as_a_files_pieces_directory_keeps_its_own_pieces(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    # The larger file goes first (largest first): its assembly comes while the other's pieces are under way.
    big = write_big(inputs, "big", "jsonl", 240, seed=1)
    inner = write_big(inputs / "big.jsonl.pieces", "inner", "jsonl", 120, seed=2)
    piece_bytes = decompressed_size(inputs / "big.jsonl.pieces" / "inner.jsonl") // 4

    result = run_cli(run_args(inputs, output, tiny_domain_model, "--piece-bytes", str(piece_bytes)))

    assert result.returncode == 0, result.stderr[-3000:]
    outputs = output_files(output)
    assert sorted(outputs) == ["big.jsonl", "big.jsonl.pieces/inner.jsonl"]
    assert read_output(outputs["big.jsonl"])["id"].tolist() == big
    assert read_output(outputs["big.jsonl.pieces/inner.jsonl"])["id"].tolist() == inner
    s = summary(output)
    assert (s["files_processed"], s["files_failed"], s["documents_in"]) == (2, 0, 360)
    assert s["pieces_processed"] >= 12  # both files in pieces: the test proved something
    assert not (output / "_pieces").exists()
    assert temp_files(output) == []
