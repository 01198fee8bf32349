"""From `hpc-classify run` flags and a YAML `--config` file to one `RunConfig` (built once; `node` and
`submit` reuse it as an object).

YAML keys are the long flag names (dashes or underscores). Classifiers are given either as a list,

    classifiers:
      - classifier: domain            # a built-in name, or package.module:ClassName
        filter_by: [Games, Sports]    # any constructor argument of that class
      - classifier: mylab.tox:ToxicityClassifier
        model_dir: /models/tox

or, for one classifier, as top-level keys (`classifier: quality`, `model: ...`). Flags override the file:
`--classifier` (repeatable) replaces its classifiers; `--input` or `--input-list` replaces its `input` and
`input_list` both (one setting: what to read); the per-model flags (--model, --filter-by, ...) need exactly one
classifier; the shared flags (--device, --batch-size, ...) apply to every classifier.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from hpc_classify.classifiers.engine_options import PER_MODEL, SHARED, option_names
from hpc_classify.config import RunConfig
from hpc_classify.errors import ConfigError

# Constructor arguments that only make sense for one model at a time.
PER_MODEL_KEYS = ("model", "revision", "filter_by", "pred_column", "prob_column", *option_names(PER_MODEL))
# Constructor arguments every classifier takes, applied to all of them when given as flags.
SHARED_KEYS = ("text_field", *option_names(SHARED))
# Two spellings of one setting (autocast false is precision fp32): a flag for either overrides the file's both.
ONE_SETTING = ("precision", "autocast")
RUN_KEYS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in ("classifiers", "inputs"))
LIST_KEYS = ("input", "input_list", "filter_by", "keep_columns", "classifier")
# The inputs are one setting: --input or --input-list on the command line replaces the file's both.
INPUT_KEYS = ("input", "input_list")
# Keys whose values are paths: a leading `~` or `~user` is expanded, as the shell does for the same flags.
PATH_KEYS = ("input", "input_list", "output", "scheduler_file")
TOP_LEVEL_KEYS = frozenset(
    (*INPUT_KEYS, "classifiers", "classifier", *PER_MODEL_KEYS, *SHARED_KEYS, *RUN_KEYS)
)


def load_yaml_config(path: str) -> dict[str, Any]:
    """Read a YAML mapping of settings; top-level keys normalised to flag dests; unknown keys -> ConfigError."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_unique_keys_loader(yaml))
    except OSError as exc:
        raise ConfigError(f"cannot read --config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path} must hold a mapping of settings, not a {type(data).__name__}")
    settings: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        name = "input" if name == "inputs" else name
        if name in settings:
            raise ConfigError(
                f"--config {path} sets {name!r} twice (as {key!r} and another spelling of it)",
                hint="keep one of them: dashes and underscores, input and inputs name the same setting",
            )
        if name not in TOP_LEVEL_KEYS:
            raise ConfigError(
                f"unknown key {key!r} in --config {path}",
                hint=f"valid keys: {', '.join(sorted(TOP_LEVEL_KEYS))}",
            )
        if name in LIST_KEYS and name != "classifier":
            value = _as_list(value, key, path)
        if name in PATH_KEYS:
            value = _home_expanded(value)
        settings[name] = value
    if "classifiers" in settings:
        _check_classifier_list(settings, path)
    return settings


def _as_list(value: Any, key: str, path: str) -> list[Any] | None:
    """A key that takes several values (input, filter_by, keep_columns): one value or a list, never a mapping
    (whose keys would be taken silently) or a number."""
    if value is None or isinstance(value, list):  # null: not set, as for every other key
        return value
    if isinstance(value, str):
        return [value]
    raise ConfigError(
        f"--config {path}: {key!r} must be a value or a list of values, not {value!r}",
        hint=f"e.g. `{key}: [a, b]` or `{key}: a`",
    )


def _home_expanded(value: Any) -> Any:
    """`~/x` and `~user/x` (one value or each of a list) as the shell would expand them; anything else as it is."""
    if isinstance(value, list):
        return [_home_expanded(item) for item in value]
    return os.path.expanduser(value) if isinstance(value, str) else value


def _unique_keys_loader(yaml: Any) -> type:
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last, silently)."""

    class UniqueKeysLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} given twice", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeysLoader


def _check_classifier_list(settings: dict[str, Any], path: str) -> None:
    entries = settings["classifiers"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"--config {path}: 'classifiers' must be a non-empty list of mappings")
    mixed = sorted(k for k in ("classifier", *PER_MODEL_KEYS) if k in settings)
    if mixed:
        raise ConfigError(
            f"--config {path}: top-level {', '.join(mixed)} beside a 'classifiers' list",
            hint="move them into the entries of 'classifiers'",
        )


def config_from_args(args: argparse.Namespace, *, check_inputs: bool = True) -> RunConfig:
    """The RunConfig of parsed `run` flags (and the YAML file they name), validated. `check_inputs=False`:
    entries of input lists are not looked up (see io/input_list.py)."""
    from hpc_classify.classifiers.registry import classifier_from_spec

    from_file = load_yaml_config(args.config) if getattr(args, "config", None) else {}
    flags = {k: v for k, v in vars(args).items() if v is not None}
    # `--output=~/x`: the shell expands `~` only at a word's start, so `=` left it as written.
    flags.update((k, _home_expanded(flags[k])) for k in PATH_KEYS if k in flags)
    specs = classifier_specs(from_file, flags)
    classifiers = [classifier_from_spec(spec) for spec in specs]
    run_values = {k: flags.get(k, from_file.get(k)) for k in RUN_KEYS if k in flags or k in from_file}
    inputs = run_inputs(
        flags if any(k in flags for k in INPUT_KEYS) else from_file, check_entries=check_inputs
    )
    run_values.setdefault("output", None)  # missing: RunConfig's own error names the flag
    try:
        return RunConfig(inputs=tuple(inputs), classifiers=tuple(classifiers), **run_values)
    except TypeError as exc:  # a YAML value of the wrong kind reaching the dataclass
        raise ConfigError(f"invalid setting: {exc}") from exc


def run_inputs(settings: dict[str, Any], *, check_entries: bool = True) -> list[str]:
    """The --input specs, then those of each --input-list file (io/input_list.py), in order."""
    from hpc_classify.io.input_list import read_input_list

    inputs = list(settings.get("input") or ())
    for list_file in settings.get("input_list") or ():
        if not isinstance(list_file, str):  # a YAML number would be taken for a file descriptor by open()
            raise ConfigError(
                f"input_list must name files, not {list_file!r}", hint="e.g. `input_list: shards.txt`"
            )
        inputs.extend(read_input_list(list_file, check_entries=check_entries))
    return inputs


def classifier_specs(from_file: dict[str, Any], flags: dict[str, Any]) -> list[dict[str, Any]]:
    """One `{"classifier": NAME, **arguments}` per classifier, flags applied over the file's entries."""
    if "classifier" in flags:
        dropped = sorted(k for k in ("classifier", "classifiers", *PER_MODEL_KEYS) if k in from_file)
        if dropped:
            raise ConfigError(
                f"--classifier given, and the --config file sets {', '.join(dropped)}: the flag replaces "
                "the file's classifier, so those settings would be dropped",
                hint="name the classifier in one place: drop --classifier, or those keys from the file",
            )
        specs = [{"classifier": name} for name in flags["classifier"]]
    elif "classifiers" in from_file:
        specs = [_entry(entry, position) for position, entry in enumerate(from_file["classifiers"], start=1)]
    else:
        single = {k: from_file[k] for k in ("classifier", *PER_MODEL_KEYS) if k in from_file}
        single.setdefault("classifier", "domain")
        specs = [single]
    for spec in specs:  # the file's top-level shared keys are defaults for every classifier
        spec.update({k: from_file[k] for k in SHARED_KEYS if k in from_file and k not in spec})
    per_model = {k: flags[k] for k in PER_MODEL_KEYS if k in flags}
    if per_model:
        if len(specs) != 1:
            flag_names = ", ".join(f"--{k.replace('_', '-')}" for k in per_model)
            raise ConfigError(
                f"{flag_names} given with {len(specs)} classifiers: it would be ambiguous",
                hint="give per-classifier arguments in the YAML config's 'classifiers' list",
            )
        specs[0].update(per_model)
    shared = {k: flags[k] for k in SHARED_KEYS if k in flags}
    for spec in specs:
        if any(k in shared for k in ONE_SETTING):  # the flag replaces the file's value in either spelling
            for key in ONE_SETTING:
                spec.pop(key, None)
        spec.update(shared)
    return specs


def _entry(entry: Any, position: int) -> dict[str, Any]:
    if not isinstance(entry, dict) or "classifier" not in entry:
        raise ConfigError(
            f"classifiers entry {position} must be a mapping with a 'classifier' key, not {entry!r}",
            hint="e.g. - classifier: domain\n    filter_by: [Games]",
        )
    # Dashes normalised here, so that the shared keys merged into the entry are recognised.
    return {str(k).replace("-", "_"): v for k, v in entry.items()}
