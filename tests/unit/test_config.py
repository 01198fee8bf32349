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


def test_keeping_a_row_number_column_beside_the_added_one_is_refused_before_the_run(tmp_path, capsys):
    """The lean output's join column `row_number` and a kept input `row_number` clashed in every file task
    (a bare `ValueError: cannot insert row_number, already exists`, retried): refused first, exit 2."""
    from hpc_classify.cli.main import main

    with pytest.raises(ConfigError, match="--keep-columns row_number: a lean output already has") as caught:
        RunConfig(inputs=("in",), output="out", classifiers=("c",), keep_columns=["row_number", "url"])
    assert "--key-column row_number" in caught.value.hint
    keyed = RunConfig(
        inputs=("in",), output="out", classifiers=("c",), keep_columns=["row_number"], key_column="row_number"
    )
    assert keyed.row_number_column is None  # the remedy: the input's own row_number joins, none is added
    (tmp_path / "a.jsonl").write_text('{"text": "x", "row_number": 7}\n')
    argv = ["run", "--input", str(tmp_path / "a.jsonl"), "--output", str(tmp_path / "out"), "--device", "cpu"]
    assert main([*argv, "--keep-columns", "row_number", "text"]) == 2
    assert "a lean output already has a 'row_number' column" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


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


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("overwrite", "false", r"overwrite must be true or false, not 'false'"),
        ("verify_inputs", "no", r"verify_inputs must be true or false"),
        ("dask_report", 1, r"dask_report must be true or false"),
        ("max_retries", None, r"max_retries must be an integer, not None"),
        ("tasks_per_worker", None, r"tasks_per_worker must be an integer"),
        ("workers", 0, r"workers must be >= 1, not 0"),
        ("workers", -3, r"workers must be >= 1, not -3"),
        ("threads_per_worker", -1, r"threads_per_worker must be >= 1"),
        (
            "worker_wait",
            float("nan"),
            r"worker_wait must be a finite number of seconds >= 0 \(0: no limit\), not nan",
        ),
        ("stop_grace", float("inf"), r"stop_grace must be a finite number"),
        ("progress_interval", 0, r"progress_interval must be a finite number of seconds > 0, not 0"),
        ("inputs", (5,), r"inputs must be paths, not 5"),
    ],
)
def test_wrong_values_are_refused_by_name(setting, value, message):
    settings = {"inputs": ("in",), "output": "out", "classifiers": NO_CLASSIFIER_NEEDED, setting: value}
    with pytest.raises(ConfigError, match=message):
        RunConfig(**settings)


def test_computed_counts_from_numpy_are_taken_as_plain_integers():
    import numpy as np

    counts = {"workers": np.int64(2), "max_retries": np.int32(3), "group_bytes": np.uint64(4096)}
    config = RunConfig(inputs=("in",), output="out", classifiers=NO_CLASSIFIER_NEEDED, **counts)
    assert {name: (type(getattr(config, name)), getattr(config, name)) for name in counts} == {
        "workers": (int, 2),
        "max_retries": (int, 3),
        "group_bytes": (int, 4096),
    }
    with pytest.raises(ConfigError, match="workers must be an integer, not True"):
        RunConfig(inputs=("in",), output="out", classifiers=NO_CLASSIFIER_NEEDED, workers=True)


def test_computed_seconds_from_numpy_are_taken_as_plain_numbers():
    import numpy as np

    waits = {"stop_grace": np.float64(12.5), "worker_wait": np.int64(60)}
    config = RunConfig(inputs=("in",), output="out", classifiers=NO_CLASSIFIER_NEEDED, **waits)
    assert {name: (type(getattr(config, name)), repr(getattr(config, name))) for name in waits} == {
        "stop_grace": (float, "12.5"),
        "worker_wait": (int, "60"),  # as NodeOptions takes it: whole_numbers.plain_number
    }


def _run_yaml(tmp_path, text: str, *flags: str) -> tuple[int, str]:
    import contextlib
    import io

    from hpc_classify.cli.main import main

    config = tmp_path / "run.yaml"
    config.write_text(f"output: {tmp_path / 'out'}\n{text}")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["run", "--config", str(config), "--device", "cpu", *flags])
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("input: a.jsonl\ninputs: b.jsonl\n", "sets 'input' twice (as 'inputs' and another spelling of it)"),
        ("input: a.jsonl\nmax-retries: 5\nmax_retries: 0\n", "sets 'max_retries' twice"),
        ("input: a.jsonl\ninput: b.jsonl\n", "key 'input' given twice"),
    ],
)
def test_a_yaml_setting_given_twice_is_refused(tmp_path, text, message):
    code, err = _run_yaml(tmp_path, text)
    assert code == 2 and message in err, err
    assert not (tmp_path / "out").exists()


def test_classifier_flag_beside_the_files_model_is_refused_not_dropped(tmp_path):
    code, err = _run_yaml(
        tmp_path, "input: a.jsonl\nmodel: /models/x\nfilter_by: [Games]\n", "--classifier", "domain"
    )
    assert code == 2, err
    assert "--classifier given, and the --config file sets filter_by, model" in err


def test_log_level_takes_any_case_and_refuses_unknown_levels(tmp_path, capsys, monkeypatch):
    from hpc_classify.cli.main import main
    from hpc_classify.logging_setup import requested_level

    assert requested_level("debug") == "DEBUG"
    monkeypatch.setenv("HPC_CLASSIFY_LOG_LEVEL", "warning")
    assert requested_level(None) == "WARNING"
    with pytest.raises(SystemExit) as exit_info:
        main(["--log-level", "loud", "status", "--output", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--log-level 'loud' is not a logging level" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("input: {a.jsonl: 1}\n", "'input' must be a value or a list of values, not {'a.jsonl': 1}"),
        ("input: a.jsonl\nkeep_columns: 3\n", "'keep_columns' must be a value or a list of values, not 3"),
        ("input: a.jsonl\nfilter_by: {News: 1}\n", "'filter_by' must be a value or a list of values"),
        (
            "input: a.jsonl\nclassifiers:\n  - {classifier: domain, filter_by: {News: 1}}\n",
            "filter_by must be a label or a list of labels, not {'News': 1}",
        ),
    ],
)
def test_a_mapping_where_a_list_belongs_is_refused_not_read_as_its_keys(tmp_path, text, message):
    code, err = _run_yaml(tmp_path, text)
    assert code == 2 and message in err, err
    assert not (tmp_path / "out").exists()


def test_filter_by_takes_any_sequence_of_labels_from_python():
    import numpy as np

    from hpc_classify import DomainClassifier

    assert DomainClassifier(filter_by=np.array(["News", "Games"])).filter_by == ["News", "Games"]
    assert DomainClassifier(filter_by=("News",)).filter_by == ["News"]
    for bad in ({"News": 1}, 3, ["News", 1]):
        with pytest.raises(ConfigError, match="filter_by must be a label or a list of labels"):
            DomainClassifier(filter_by=bad)


def test_a_yaml_null_for_a_list_key_means_not_set(tmp_path):
    from hpc_classify.cli.run_config import load_yaml_config

    path = tmp_path / "run.yaml"
    path.write_text("input: a.jsonl\nfilter_by: ~\nkeep_columns:\n")
    assert load_yaml_config(str(path)) == {"input": ["a.jsonl"], "filter_by": None, "keep_columns": None}


@pytest.mark.parametrize("field", ["inputs", "keep_columns"])
def test_runconfig_refuses_a_mapping_for_a_list_of_names(field):
    settings = {"inputs": ["a.jsonl"], field: {"id": 1}}
    with pytest.raises(ConfigError, match=f"{field} must be"):
        RunConfig(classifiers=["domain"], output="out", **settings)
