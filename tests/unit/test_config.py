"""Settings validation: bad values are refused with the setting's name, before any work starts."""

from __future__ import annotations

import pytest

from hpc_classify.config import RunConfig
from hpc_classify.errors import ConfigError

NO_CLASSIFIER_NEEDED = ("a classifier object",)  # RunConfig only stores them; the driver checks them


def test_max_workers_below_workers_is_refused():
    with pytest.raises(ConfigError, match=r"max_workers \(2\) must be at least workers \(3\)"):
        RunConfig(inputs=("in",), output="out", classifiers=NO_CLASSIFIER_NEEDED, workers=3, max_workers=2)
    config = RunConfig(
        inputs=("in",), output="out", classifiers=NO_CLASSIFIER_NEEDED, workers=1, max_workers=4
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
