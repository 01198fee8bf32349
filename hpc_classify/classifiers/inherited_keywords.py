"""`@inherited_keywords`: a classifier's `__init__` states only what differs from its parent.

As dask-jobqueue's `SLURMJob` over `Job`: the subclass writes its own parameters (NeMo Curator's
positional ones, with their defaults, and any keyword it adds or whose default it changes) and passes the
rest on with `**inherited`. The decorator gives the class the signature a reader (and `help`, `inspect`)
expects: its own parameters, then, keyword-only, every keyword of the parent it does not name, in the
parent's order and with the parent's defaults. When the parent is not decorated (the root of the chain, or
a pass-through like `CheckpointClassifier`), those keywords are the engine options (`EngineOptions`),
except the ones the class sets itself (`fixed_engine_options`). A keyword outside that signature is a
TypeError before the constructor runs, exactly as for a signature written out in full.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import Any

from hpc_classify.classifiers.engine_options import OPTION_FIELDS

_MARK = "__inherited_keywords__"


def inherited_keywords(cls: type | None = None, *, order: Sequence[str] = ()) -> Any:
    """Class decorator: `cls.__init__(self, ..., **inherited)` gets its full signature (see the module).
    `order` (names) orders its keyword-only parameters; those it does not list follow, in their order."""
    if cls is None:
        return functools.partial(inherited_keywords, order=order)
    init = cls.__dict__["__init__"]
    own = list(inspect.signature(init).parameters.values())
    if not own or own[-1].kind is not inspect.Parameter.VAR_KEYWORD:
        raise TypeError(f"{cls.__qualname__}.__init__ must end with **inherited to inherit keywords")
    own = own[:-1]
    named = {parameter.name for parameter in own}
    keywords = [p for p in own if p.kind is inspect.Parameter.KEYWORD_ONLY]
    positional = [p for p in own if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    parent_init = cls.__mro__[1].__init__
    if getattr(parent_init, _MARK, False):
        overrides = {p.name: p for p in keywords}
        parent = inspect.signature(parent_init).parameters.values()
        inherited = [overrides.pop(p.name, p) for p in parent if p.kind is inspect.Parameter.KEYWORD_ONLY]
        keywords = [*inherited, *overrides.values()]
    else:
        fixed = set(getattr(cls, "fixed_engine_options", ()))
        keywords += [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
            for f in OPTION_FIELDS
            if f.name not in named and f.name not in fixed
        ]
    unknown = set(order) - {p.name for p in keywords}
    if unknown:
        raise TypeError(f"{cls.__qualname__}: order names no keyword of it: {', '.join(sorted(unknown))}")
    rank = {name: index for index, name in enumerate(order)}
    keywords.sort(key=lambda p: rank.get(p.name, len(rank)))  # stable: the unlisted keep their order
    signature = inspect.signature(init).replace(parameters=[*positional, *keywords])

    @functools.wraps(init)
    def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError as error:  # a keyword this class does not take, too many positional arguments
            raise TypeError(f"{type(self).__name__}.__init__() {error}") from None
        init(self, *args, **kwargs)

    checked_init.__signature__ = signature  # type: ignore[attr-defined]
    setattr(checked_init, _MARK, True)
    cls.__init__ = checked_init  # type: ignore[method-assign]
    return cls
