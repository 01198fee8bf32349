"""`hpc-classify submit --local`: submitit's local executor on this machine (no Slurm) leaves in its folder
the one job folder it writes into, nothing beside it."""

from __future__ import annotations

from driver_support import make_corpus, run_cli


def test_submit_local_leaves_one_job_folder(tmp_path, tiny_domain_model) -> None:
    make_corpus(tmp_path / "in", n_files=1, docs_per_file=2)
    out = tmp_path / "out"
    args = ["--input", str(tmp_path / "in"), "--output", str(out), "--model", str(tiny_domain_model)]

    result = run_cli(["submit", "--local", "--", *args, "--device", "cpu"])

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    folders = list((out / "_jobs" / "submitit").iterdir())  # the controller made a literal `%j-...` too
    assert len(folders) == 1, sorted(f.name for f in folders)
    assert folders[0].name.startswith("local-")
    assert sorted(f.name.split("_", 1)[1] for f in folders[0].glob("*_0_log.*")) == ["0_log.err", "0_log.out"]
