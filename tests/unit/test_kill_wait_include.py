"""KillWait set through slurm.conf's `Include` lines (cluster/kill_wait.py): Slurm reads an included file inline,
a relative name from slurm.conf's directory (else, for Slurm before 23.02, from the including file's), `%c` as the
ClusterName; the last KillWait read wins. Read
without following them, a site that keeps its timers in an included file got 30 s, and a stop sized for 30 s
was SIGKILLed after a KillWait of 10."""

from __future__ import annotations

import logging
from pathlib import Path

from hpc_classify.cluster.kill_wait import MAX_INCLUDE_DEPTH, kill_wait_here, read_kill_wait


def test_an_included_file_sets_kill_wait_where_its_line_stands(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "timers.conf").write_text("MinJobAge=10\nKillWait=10\n")
    conf = tmp_path / "slurm.conf"
    conf.write_text(
        "ClusterName=c1\nKillWait=50\ninclude conf.d/timers.conf   # relative: from slurm.conf's dir\n"
    )
    assert read_kill_wait(conf) == 10  # the include comes after: it wins
    conf.write_text("INCLUDE conf.d/timers.conf\nKillWait=50\n")
    assert read_kill_wait(conf) == 50  # a later line in the including file wins over the include
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    (tmp_path / "conf.d" / "timers.conf").write_text("KillWait=12\n")
    conf.write_text(f"Include {tmp_path / 'conf.d' / 'timers.conf'}\n")  # an absolute name
    assert kill_wait_here() == 12


def test_nested_includes_take_names_from_slurm_conf_directory_and_percent_c_is_the_cluster(
    tmp_path: Path,
) -> None:
    # Slurm 23.02 and later (parse_config.c: get_extra_conf_path) take every relative Include name from
    # slurm.conf's directory, also inside an included file of another directory; they were read from the
    # including file's directory, missed, and KillWait taken as 30 s.
    (tmp_path / "sites").mkdir()
    (tmp_path / "inner").mkdir()
    (tmp_path / "sites" / "mycluster.conf").write_text("Include inner/kill.conf\n")
    (tmp_path / "inner" / "kill.conf").write_text("KillWait=10\n")
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=MyCluster\nInclude sites/%c.conf\n")
    assert read_kill_wait(conf) == 10
    # Where both files exist, slurm.conf's directory wins, as for Slurm 23.02 and later.
    (tmp_path / "sites" / "inner").mkdir()
    (tmp_path / "sites" / "inner" / "kill.conf").write_text("KillWait=7\n")
    assert read_kill_wait(conf) == 10
    # Only beside the including file: Slurm before 23.02 reads that one (this machine's 22.05 does).
    (tmp_path / "inner" / "kill.conf").unlink()
    assert read_kill_wait(conf) == 7
    conf.write_text(
        "Include sites/%c.conf\nClusterName=MyCluster\n"
    )  # %c before any ClusterName: Slurm fails it
    assert read_kill_wait(conf) == 30


def test_an_unreadable_include_is_skipped_and_named(tmp_path: Path, caplog) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text("KillWait=20\nInclude missing.conf\n")
    with caplog.at_level(logging.INFO, logger="hpc_classify.cluster.kill_wait"):
        assert read_kill_wait(conf) == 20
    assert [r.getMessage() for r in caplog.records] == [
        f"{conf}: cannot read its Include {tmp_path / 'missing.conf'}: KillWait taken from the files read"
    ]


def test_a_file_that_includes_itself_ends(tmp_path: Path, caplog) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text("KillWait=9\nInclude slurm.conf\n")
    with caplog.at_level(logging.INFO, logger="hpc_classify.cluster.kill_wait"):
        assert read_kill_wait(conf) == 9
    assert len(caplog.records) == 1
    assert f"is {MAX_INCLUDE_DEPTH + 1} files deep" in caplog.records[0].getMessage()


def test_a_key_that_only_starts_with_include_is_a_setting(tmp_path: Path) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text("IncludeX=1 KillWait=15\n")  # not an include directive: no blank after the word
    assert read_kill_wait(conf) == 15
