"""`hpc_classify.run`'s settings are RunConfig's fields: same names and defaults, refused when unknown or
when they would not apply; `cluster` keeps its earlier meanings (a Client, a scheduler file)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from hpc_classify import run
from hpc_classify.api import _client_given_as_cluster
from hpc_classify.config import RunConfig
from hpc_classify.errors import ConfigError


def test_every_runconfig_field_is_a_run_parameter_with_its_default():
    params = inspect.signature(run).parameters
    for field in dataclasses.fields(RunConfig):
        assert field.name in params, field.name
        if field.default is not dataclasses.MISSING:
            assert params[field.name].default == field.default, field.name
    assert list(params)[:3] == ["classifiers", "inputs", "output"]


def test_an_unknown_setting_is_refused_naming_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown setting\(s\): worker_count") as caught:
        run("c", tmp_path, tmp_path / "out", worker_count=2)
    assert "worker_wait" in str(caught.value)
    assert not (tmp_path / "out").exists()


class _Client:  # what run() checks of a distributed.Client
    submit = nthreads = None


def test_worker_settings_with_a_client_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"workers given with client="):
        run("c", tmp_path, tmp_path / "out", client=_Client(), workers=2)


def test_cluster_keeps_its_earlier_meanings_beside_runconfigs():
    client = _Client()
    settings = {"cluster": client}
    assert _client_given_as_cluster(settings, None) is client and settings == {}
    settings = {"cluster": "/shared/job/scheduler.json"}
    assert _client_given_as_cluster(settings, None) is None
    assert settings == {"scheduler_file": "/shared/job/scheduler.json"}
    settings = {"cluster": "jobqueue"}
    assert _client_given_as_cluster(settings, None) is None and settings == {"cluster": "jobqueue"}
    settings = {"cluster": None}
    assert _client_given_as_cluster(settings, None) is None and settings == {}


def test_a_protocol_with_a_client_is_refused_not_ignored(tmp_path):
    with pytest.raises(ConfigError, match=r"protocol given with client="):
        run("c", tmp_path, tmp_path / "out", client=_Client(), protocol="ucxx")
