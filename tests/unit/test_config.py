"""Settings validation: bad values are refused with the setting's name, before any work starts."""

from __future__ import annotations

import pytest

from hpc_classify.config import ClassifierSettings, RunConfig
from hpc_classify.errors import ConfigError


def test_max_workers_below_workers_is_refused():
    with pytest.raises(ConfigError, match=r"max_workers \(2\) must be at least workers \(3\)"):
        RunConfig(inputs=("in",), output="out", workers=3, max_workers=2)
    assert RunConfig(inputs=("in",), output="out", workers=1, max_workers=4).max_workers == 4


@pytest.mark.parametrize(
    ("field", "value"), [("output_format", "csv"), ("on_bad_row", "ignore"), ("protocol", "ib")]
)
def test_unknown_choices_are_refused_by_name(field, value):
    with pytest.raises(ConfigError, match=field):
        RunConfig(inputs=("in",), output="out", **{field: value})


def test_classifier_settings_normalise_filter_by_and_round_trip():
    settings = ClassifierSettings(filter_by="Games", max_chars=100)
    assert settings.filter_by == ("Games",)
    assert ClassifierSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(ConfigError, match="max_chars"):
        ClassifierSettings(max_chars=0)
    with pytest.raises(ConfigError, match="unknown classifier setting"):
        ClassifierSettings.from_dict({"colour": "red"})
