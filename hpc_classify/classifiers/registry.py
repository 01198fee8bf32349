"""Classifiers by name: the built-ins' kebab-case names, or any `package.module:ClassName` import path.

`classifier_from_spec({"classifier": NAME, **constructor arguments})` is how the CLI and YAML build the
classifier objects of a run; everything that can go wrong is a ConfigError before any cluster starts.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Mapping, Sequence
from typing import Any

from hpc_classify.classifiers.aegis import AegisClassifier, InstructionDataGuardClassifier
from hpc_classify.classifiers.base import DistributedDataClassifier
from hpc_classify.classifiers.checkpoint_classifier import (
    ContentTypeClassifier,
    DomainClassifier,
    MultilingualDomainClassifier,
    QualityClassifier,
)
from hpc_classify.classifiers.fineweb import (
    FineWebEduClassifier,
    FineWebMixtralEduClassifier,
    FineWebNemotronEduClassifier,
)
from hpc_classify.classifiers.prompt_complexity import PromptTaskComplexityClassifier
from hpc_classify.errors import ConfigError

CLASSIFIERS: dict[str, type[DistributedDataClassifier]] = {
    "domain": DomainClassifier,
    "quality": QualityClassifier,
    "multilingual-domain": MultilingualDomainClassifier,
    "content-type": ContentTypeClassifier,
    "prompt-task-complexity": PromptTaskComplexityClassifier,
    "fineweb-edu": FineWebEduClassifier,
    "fineweb-mixtral-edu": FineWebMixtralEduClassifier,
    "fineweb-nemotron-edu": FineWebNemotronEduClassifier,
    "aegis": AegisClassifier,
    "instruction-data-guard": InstructionDataGuardClassifier,
}

SPEC_CLASS_KEY = "classifier"


def resolve_classifier_class(name: str) -> type[DistributedDataClassifier]:
    """A built-in name, or `package.module:ClassName` naming a DistributedDataClassifier subclass."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a classifier must be named by a string, not {name!r}")
    if ":" not in name:
        try:
            return CLASSIFIERS[name]
        except KeyError:
            close = difflib.get_close_matches(name, CLASSIFIERS, n=1)
            raise ConfigError(
                f"unknown classifier {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                hint=f"built-in: {', '.join(CLASSIFIERS)}; or an import path package.module:ClassName",
            ) from None
    module_name, _, class_name = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 -- any import failure of user code is a configuration error
        raise ConfigError(
            f"classifier {name!r}: cannot import module {module_name!r} ({type(exc).__name__}: {exc})",
            hint="check the spelling and that the module is on PYTHONPATH (on every node, for a cluster run)",
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigError(f"classifier {name!r}: module {module_name!r} has no attribute {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, DistributedDataClassifier)):
        raise ConfigError(
            f"classifier {name!r} is not a DistributedDataClassifier subclass",
            hint="subclass hpc_classify.DistributedDataClassifier",
        )
    return cls


def classifier_from_spec(spec: Mapping[str, Any]) -> DistributedDataClassifier:
    """Build one classifier from `{"classifier": NAME, **constructor arguments}` (YAML or CLI)."""
    if not isinstance(spec, Mapping) or SPEC_CLASS_KEY not in spec:
        raise ConfigError(
            f"a classifier entry must be a mapping with a {SPEC_CLASS_KEY!r} key, not {spec!r}",
            hint="e.g. {classifier: domain, filter_by: [Games]}",
        )
    name = spec[SPEC_CLASS_KEY]
    cls = resolve_classifier_class(name)
    arguments = {str(k).replace("-", "_"): v for k, v in spec.items() if k != SPEC_CLASS_KEY}
    valid = _argument_names(cls)
    unknown = [key for key in arguments if valid is not None and key not in valid]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(cls).parameters.values())
    if unknown and not takes_any:
        raise _unknown_arguments(name, cls, unknown, valid or [])
    unused = {key: why for key, why in getattr(cls, "UNUSED_ARGUMENTS", {}).items() if key in arguments}
    if unused:
        raise ConfigError(
            f"classifier {name!r} ({cls.__name__}) does not use "
            + "; ".join(f"{key}: {why}" for key, why in unused.items()),
            hint=f"drop {', '.join(unused)} for this classifier",
        )
    try:
        return cls(**arguments)
    except TypeError as exc:
        if unknown:  # a constructor taking **kwargs passed them on to one that did not take them
            raise _unknown_arguments(name, cls, unknown, valid or []) from None
        # The constructor's own complaint (missing, wrong kind), without the name of the class defining it.
        reason = re.sub(r"^[\w.]+\(\) ", "", str(exc))
        raise ConfigError(f"classifier {name!r} ({cls.__name__}): {reason}") from None


def _unknown_arguments(name: str, cls: type, unknown: list[str], valid: list[str]) -> ConfigError:
    return ConfigError(
        f"classifier {name!r} ({cls.__name__}): unknown argument{'s' if len(unknown) > 1 else ''} "
        + ", ".join(_with_suggestion(key, valid) for key in unknown),
        hint=f"{cls.__name__} takes {', '.join(valid)}",
    )


def _argument_names(cls: type) -> list[str] | None:
    """The keyword arguments the constructor takes, in order, assuming `**kwargs` are passed on to the base
    classes' constructors (the usual subclass pattern); None when no class in the chain names them all."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]  # without self
        names += [
            p.name
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names
        ]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names
    return None


def _with_suggestion(key: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key)
