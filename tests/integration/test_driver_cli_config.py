"""`hpc-classify run --config`: YAML keys are the long flag names, flags override them, unknown keys fail."""

from __future__ import annotations

import pytest

from hpc_classify.cli.main import build_parser
from hpc_classify.cli.run import build_run_config, load_yaml_config, merge_settings
from hpc_classify.errors import ConfigError


def settings_for(tmp_path, yaml_text: str, argv: list[str]):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    args = build_parser().parse_args(["run", "--config", str(path), *argv])
    return merge_settings(load_yaml_config(str(path)), vars(args))


def test_flags_override_the_yaml_file(tmp_path):
    yaml_text = "input: [a, b]\noutput: o\nfilter-by: News\nmax_chars: 100\nprotocol: ucxx\nautocast: false\n"
    config = build_run_config(settings_for(tmp_path, yaml_text, ["--max-chars", "300", "--output", "p"]))
    assert config.inputs == ("a", "b") and config.output == "p"
    assert config.classifier.filter_by == ("News",) and config.classifier.max_chars == 300
    assert config.protocol == "ucxx" and config.classifier.autocast is False
    assert config.max_retries == 2  # dataclass default when neither gives it


def test_unknown_key_is_a_config_error_listing_valid_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'max_char'.*\nHINT: valid keys: .*max_chars"):
        settings_for(tmp_path, "max_char: 3\n", [])


def test_invalid_values_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="protocol must be one of"):
        build_run_config(settings_for(tmp_path, "input: a\noutput: o\nprotocol: udp\n", []))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        settings_for(tmp_path, "- a\n", [])
    with pytest.raises(ConfigError, match="no --input"):
        build_run_config(settings_for(tmp_path, "output: o\n", []))
