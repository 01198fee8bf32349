"""NeMo Curator's classifier-script flags on `hpc-classify run` are answered with ours, not with a close
spelling that misleads (--output-data-dir: "did you mean --output-format?")."""

from __future__ import annotations

import pytest

from hpc_classify.cli.flag_typos import NEMO_SCRIPT_FLAGS
from hpc_classify.cli.main import main


def test_nemo_script_flags_are_answered_with_ours(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["run", "--input-data-dir", "in", "--output-data-dir", "out", "--input-text-field=body"])
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.endswith(
        "unrecognized arguments: --input-data-dir in --output-data-dir out --input-text-field=body "
        "(--input-data-dir is NeMo Curator's script flag: here --input DIR; "
        "--output-data-dir is NeMo Curator's script flag: here --output DIR; "
        "--input-text-field is NeMo Curator's script flag: here --text-field)"
    )


def test_every_flag_named_as_ours_exists_on_run(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = capsys.readouterr().out
    ours = {answer.split()[0] for answer in NEMO_SCRIPT_FLAGS.values() if answer.startswith("--")}
    assert ours and all(flag in help_text for flag in ours)
    assert not any(nemo in help_text for nemo in NEMO_SCRIPT_FLAGS)  # none of them is also a flag of ours
