"""`hpc-classify run --config`: YAML keys are the long flag names plus a `classifiers:` list, flags override
them, and every mistake is a ConfigError before anything runs."""

from __future__ import annotations

import pytest

from hpc_classify import DomainClassifier, QualityClassifier
from hpc_classify.cli.run import parse_run_argv
from hpc_classify.cli.run_config import config_from_args
from hpc_classify.errors import ConfigError


def config_for(tmp_path, yaml_text: str, argv: list[str]):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    return config_from_args(parse_run_argv(["--config", str(path), *argv]))


def test_flags_override_the_yaml_file(tmp_path):
    yaml_text = "input: [a, b]\noutput: o\nfilter-by: News\nmax_chars: 100\nprotocol: ucxx\nautocast: false\n"
    config = config_for(tmp_path, yaml_text, ["--max-chars", "300", "--output", "p", "--stop-grace", "5"])
    assert config.inputs == ("a", "b") and config.output == "p" and config.stop_grace == 5.0
    (classifier,) = config.classifiers
    assert type(classifier) is DomainClassifier
    assert classifier.filter_by == ["News"] and classifier.max_chars == 300
    assert config.protocol == "ucxx" and classifier.autocast is False
    assert config.max_retries == 2  # dataclass default when neither gives it


def test_a_classifiers_list_builds_each_with_its_own_arguments_and_shared_flags(tmp_path):
    yaml_text = (
        "input: a\noutput: o\nkeep_columns: [id]\ndevice: cpu\n"
        "classifiers:\n"
        "  - classifier: domain\n    model: /m/domain\n    filter_by: Games\n"
        "  - classifier: quality\n    prob_column: q\n    max_chars: 50\n"
    )
    config = config_for(tmp_path, yaml_text, ["--batch-size", "8"])
    domain, quality = config.classifiers
    assert (type(domain), type(quality)) == (DomainClassifier, QualityClassifier)
    assert domain.model == "/m/domain" and domain.filter_by == ["Games"] and quality.prob_column == "q"
    assert quality.max_chars == 50 and domain.max_chars == 2000  # each keeps its own defaults
    assert domain.batch_size == quality.batch_size == 8 and domain.device == quality.device == "cpu"
    assert config.keep_columns == ("id",) and config.row_number_column == "row_number"


def test_repeated_classifier_flags_and_per_model_flags(tmp_path):
    args = ["--input", "a", "--output", "o", "--classifier", "domain", "--classifier", "quality"]
    config = config_from_args(parse_run_argv([*args, "--device", "cpu"]))
    assert [type(c) for c in config.classifiers] == [DomainClassifier, QualityClassifier]
    with pytest.raises(ConfigError, match=r"--model given with 2 classifiers.*\nHINT: .*'classifiers' list"):
        config_from_args(parse_run_argv([*args, "--model", "/m"]))


def test_unknown_key_is_a_config_error_listing_valid_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'max_char'.*\nHINT: valid keys: .*max_chars"):
        config_for(tmp_path, "max_char: 3\n", [])


def test_classifier_mistakes_are_config_errors_naming_them(tmp_path, user_package_path):
    cases = {
        "classifier: nosuch.module:Thing": r"cannot import module 'nosuch.module'",
        "classifier: mylab.toxicity:NotAClassifier": r"not a DistributedDataClassifier subclass",
        "classifier: mylab.toxicity:Missing": r"module 'mylab.toxicity' has no attribute 'Missing'",
        "classifier: mylab.toxicity:ToxicityClassifier\ncolour: red": r"unknown key 'colour'",
        "classifiers:\n  - classifier: mylab.toxicity:ToxicityClassifier\n    model_dir: m\n    colour: red": (
            r"classifier 'mylab.toxicity:ToxicityClassifier' \(ToxicityClassifier\): unknown argument 'colour'"
            r"\nHINT: ToxicityClassifier takes model_dir, filter_by, batch_size"
        ),
        "classifiers:\n  - classifier: domain\n    max_chars: 0": r"max_chars must be a positive integer",
        "classifiers:\n  - model: m": r"classifiers entry 1 must be a mapping with a 'classifier' key",
        "classifier: domain\nclassifiers:\n  - classifier: quality": r"top-level classifier beside a 'classifiers'",
    }
    for body, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            config_for(tmp_path, f"input: a\noutput: o\n{body}\n", [])


def test_invalid_values_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="protocol must be one of"):
        config_for(tmp_path, "input: a\noutput: o\nprotocol: udp\n", [])
    with pytest.raises(ConfigError, match="must hold a mapping"):
        config_for(tmp_path, "- a\n", [])
    with pytest.raises(ConfigError, match="no --input"):
        config_for(tmp_path, "output: o\n", [])
