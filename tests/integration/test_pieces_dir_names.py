"""An input directory named like a pieces directory (`big.jsonl.pieces/`, beside an input `big.jsonl`): the
pieces of its files go to `_pieces/big.jsonl.pieces+/`, never inside `big.jsonl`'s own pieces directory, which
its assembly removes (driver/piece_files.py); both files in pieces come out whole, every document once."""

from __future__ import annotations

from driver_support import output_files, run_args, run_cli, summary, temp_files
from test_pieces import counting_config, decompressed_size, read_output, stop_at_half, two_workers, write_big


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


def test_a_file_under_a_pieces_named_directory_resumes_from_its_done_pieces(
    tmp_path, tiny_toxicity_model, user_package_path
):
    """`in/a.pieces/big.jsonl` stopped at half keeps its pieces under `_pieces/a.pieces+/`; the rerun takes
    them for its own (the model sees at most 1.3x the file) and an older release's `_pieces/a.pieces/` beside
    them for another file's, never for a file `a`'s: every document once."""
    from mylab.counting import counted

    inputs, output = tmp_path / "in", tmp_path / "out"
    ids = write_big(inputs / "a.pieces", "big", "jsonl", 240, seed=4)
    pieces = 16
    size = decompressed_size(inputs / "a.pieces" / "big.jsonl")
    config = counting_config(tmp_path, inputs, output, tiny_toxicity_model, size // pieces)
    args = two_workers(config)
    stop_at_half(args, output, pieces, tmp_path / "first.log")
    assert [p.name for p in (output / "_pieces").iterdir()] == ["a.pieces+"]
    older = output / "_pieces" / "a.pieces" / "gone.jsonl"  # pieces named as outputs, by an older release
    older.mkdir(parents=True)
    (older / "000000.jsonl").write_text('{"text": "x"}\n')

    rerun = run_cli(args)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    total, _ = counted(str(tmp_path / "counts"))
    assert len(ids) <= total <= 1.3 * len(ids), (total, len(ids))
    (path,) = output_files(output).values()
    assert read_output(path)["id"].tolist() == ids
    assert "removed 1 pieces directory left by an older version" in rerun.stderr
    assert "0 done already, their completion markers stand; 1 not among this run's inputs" in rerun.stderr
    assert "whose removal a kill cut short" not in rerun.stderr  # no pieces directory of a file "a"
    assert not (output / "_pieces").exists()
    assert temp_files(output) == []
