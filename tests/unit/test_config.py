"""Settings validation: bad values are refused with the setting's name, before any work starts."""

from __future__ import annotations

import pytest

from hpc_classify.config import RunConfig
from hpc_classify.errors import ConfigError

NO_CLASSIFIER_NEEDED = ("a classifier object",)  # RunConfig only stores them; the driver checks them


def test_max_workers_below_workers_is_refused():
    with pytest.raises(ConfigError, match=r"max_workers \(2\) must be at least workers \(3\)"):
        RunConfig(
            inputs=("in",),
            output="out",
            classifiers=NO_CLASSIFIER_NEEDED,
            cluster="jobqueue",
            workers=3,
            max_workers=2,
        )
    config = RunConfig(
        inputs=("in",),
        output="out",
        classifiers=NO_CLASSIFIER_NEEDED,
        cluster="jobqueue",
        workers=1,
        max_workers=4,
    )
    assert config.max_workers == 4


@pytest.mark.parametrize(
    ("field", "value"), [("output_format", "csv"), ("on_bad_row", "ignore"), ("protocol", "ib")]
)
def test_unknown_choices_are_refused_by_name(field, value):
    with pytest.raises(ConfigError, match=field):
        RunConfig(inputs=("in",), output="out", classifiers=NO_CLASSIFIER_NEEDED, **{field: value})


def test_one_classifier_a_path_and_keep_columns_are_normalised():
    config = RunConfig(inputs="in", output="out", classifiers="c", keep_columns="id", key_column="id")
    assert (config.inputs, config.classifiers, config.keep_columns) == (("in",), ("c",), ("id",))
    assert config.row_number_column is None
    lean = RunConfig(inputs=("in",), output="out", classifiers=("c",), keep_columns=["url"])
    assert lean.row_number_column == "row_number"
    with_key = RunConfig(
        inputs=("in",), output="out", classifiers=("c",), keep_columns=["url"], key_column="id"
    )
    assert with_key.keep_columns == ("url", "id")  # the key is always written


def test_empty_classifiers_and_key_without_keep_columns_are_refused():
    with pytest.raises(ConfigError, match="no classifier given"):
        RunConfig(inputs=("in",), output="out", classifiers=())
    with pytest.raises(ConfigError, match="key_column is only meaningful with keep_columns"):
        RunConfig(inputs=("in",), output="out", classifiers=("c",), key_column="id")


@pytest.mark.parametrize(
    ("value", "message"),
    [(-1, "group_bytes must be >= 0, not -1"), ("8MB", "group_bytes must be an integer, not '8MB'")],
)
def test_group_bytes_must_be_a_non_negative_integer(value, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(inputs=("in",), output="out", classifiers=NO_CLASSIFIER_NEEDED, group_bytes=value)
    assert (
        RunConfig(inputs=("in",), output="out", classifiers=NO_CLASSIFIER_NEEDED, group_bytes=0).group_bytes
        == 0
    )


def test_cluster_slurm_is_refused_pointing_to_the_launcher():
    with pytest.raises(ConfigError, match=r"cluster must be one of local, jobqueue, not 'slurm'") as caught:
        RunConfig(inputs=("in",), output="out", classifiers=NO_CLASSIFIER_NEEDED, cluster="slurm")
    assert "slurm/classify.sbatch" in str(caught.value)


@pytest.mark.parametrize("setting", [{"workers": 2}, {"threads_per_worker": 2}, {"cluster": "jobqueue"}])
@pytest.mark.parametrize("join", [{"scheduler_file": "s.json"}, {"scheduler_address": "tcp://h:8786"}])
def test_settings_of_a_cluster_the_run_starts_are_refused_when_it_joins_one(setting, join):
    with pytest.raises(ConfigError, match=rf"{next(iter(setting))} given with a scheduler to join"):
        RunConfig(inputs=("in",), output="out", classifiers=NO_CLASSIFIER_NEEDED, **setting, **join)


def test_max_workers_is_refused_outside_jobqueue():
    with pytest.raises(ConfigError, match=r"max_workers applies only to cluster jobqueue"):
        RunConfig(inputs=("in",), output="out", classifiers=NO_CLASSIFIER_NEEDED, max_workers=4)


def test_a_yaml_cluster_slurm_is_refused_before_anything_is_written(tmp_path, capsys):
    from hpc_classify.cli.main import main

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"text": "x"}\n')
    config = tmp_path / "run.yaml"
    config.write_text(f"input: {tmp_path / 'in'}\noutput: {tmp_path / 'out'}\ncluster: slurm\n")
    assert main(["run", "--config", str(config), "--device", "cpu"]) == 2
    assert "cluster must be one of local, jobqueue, not 'slurm'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # no _run.json, no _plan.json
