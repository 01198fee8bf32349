"""The import layers of docs/CONTRACTS.md hold: no module imports a layer above its own, and no import circle.

Every `import` in every module of hpc_classify counts, including those inside functions and under
`if TYPE_CHECKING:` (a lazy import is still a dependency). Circles: none at all among module-level imports (what
runs at import time), and none through lazy imports either, apart from the known ones listed below.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "hpc_classify"

# Top to bottom, as docs/CONTRACTS.md states them; parts of one layer do not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("hpc_classify", "cli"),  # the package root resolves its public names lazily, by name
    ("api",),  # a run as users start it: the driver plus the report
    ("bench", "report"),  # report: reads what a run wrote (markers, summary, plan, failures)
    ("driver", "utils", "dataset"),  # utils and dataset: NeMo Curator's import paths, re-exported
    ("cluster", "classifiers"),
    ("models", "datasets"),
    ("engine", "io"),
    ("warning_grace",),  # the time-limit warning's lead and grace, for a RunConfig
    ("config",),
    (
        "errors",
        "logging_setup",
        "_version",
        "worker_env",
        "stop_request",
        "whole_numbers",
        "named_items",
    ),  # standard library only
    ("exit_codes",),  # the CLI's exit codes and their rules: errors and the cluster layer decide with them
)

# (importing module, imported module): why it is allowed for now. Delete a line once its import is gone.
KNOWN_LAYER_EXCEPTIONS: dict[tuple[str, str], str] = {}

# Modules that import each other (lazily: at module level there is no circle): why it is allowed for now.
# Delete a line once the circle is gone.
KNOWN_CIRCLES: dict[frozenset[str], str] = {}


# Libraries a part must never import (shared/ARCHITECTURE.md): the per-file work runs without a cluster, and
# starting a cluster stays light. (module, library): why it is allowed.
FORBIDDEN_LIBRARIES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("engine", "classifiers", "models", "io"), ("distributed", "dask.distributed", "dask_jobqueue")
    ),
    "cluster": ("torch", "transformers"),
}
KNOWN_LIBRARY_EXCEPTIONS: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def _part(module: str) -> str:
    """The layer part a module belongs to: its subpackage or top-level module (`hpc_classify.engine.x` -> engine)."""
    names = module.split(".")
    return names[1] if len(names) > 1 else names[0]


def _imported_modules(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The hpc_classify modules one import statement names (`from pkg import sub` names the submodule)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "hpc_classify"]
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
        source = f"{base}.{node.module}" if node.module else base
    else:
        source = node.module or ""
    if source.split(".")[0] != "hpc_classify":
        return []
    return [
        f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source for alias in node.names
    ]


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING")


def _imports(module: str, *, module_level_only: bool) -> list[tuple[str, int]]:
    """(imported module, line) for every import of `module`; module level: outside functions and TYPE_CHECKING."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    found: list[tuple[str, int]] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.extend((target, node.lineno) for target in _imported_modules(module, node))
        skip = module_level_only and (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            or _is_type_checking_block(node)
        )
        if not skip:
            pending.extend(ast.iter_child_nodes(node))
    return found


def _libraries(module: str) -> set[str]:
    """Every absolute import of `module` outside hpc_classify, as written (`dask.distributed`, `torch`)."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.update({node.module, *(f"{node.module}.{alias.name}" for alias in node.names)})
    return {name for name in names if name.split(".")[0] != "hpc_classify"}


def _layer_of(part: str) -> int:
    for index, parts in enumerate(LAYERS):
        if part in parts:
            return index
    raise LookupError(part)


def _layer_violations() -> dict[tuple[str, str], str]:
    violations = {}
    for module in MODULES:
        own = _part(module)
        for target, line in _imports(module, module_level_only=False):
            other = _part(target)
            if other != own and _layer_of(other) <= _layer_of(own):
                where = "above" if _layer_of(other) < _layer_of(own) else "beside"
                violations[(module, target)] = f"{MODULES[module].name}:{line}: {other} is {where} {own}"
    return violations


def _circles(*, module_level_only: bool) -> list[frozenset[str]]:
    """Strongly connected groups of more than one module in the import graph (Tarjan)."""
    graph = {
        module: {t for t, _ in _imports(module, module_level_only=module_level_only) if t in MODULES}
        for module in MODULES
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[frozenset[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == module:
                    break
            if len(group) > 1 or module in graph[module]:
                circles.append(frozenset(group))

    for module in graph:
        if module not in index:
            visit(module)
    return circles


def test_every_part_of_the_package_has_a_layer():
    unplaced = sorted({_part(module) for module in MODULES} - {part for parts in LAYERS for part in parts})
    assert unplaced == [], f"place these in LAYERS (and in docs/CONTRACTS.md's order): {unplaced}"


def test_no_module_imports_a_layer_above_its_own():
    violations = _layer_violations()
    new = {pair: why for pair, why in violations.items() if pair not in KNOWN_LAYER_EXCEPTIONS}
    assert new == {}, "imports against the layer order (docs/CONTRACTS.md):\n" + "\n".join(
        f"{a} imports {b} ({why})" for (a, b), why in sorted(new.items())
    )
    gone = sorted(set(KNOWN_LAYER_EXCEPTIONS) - set(violations))
    assert gone == [], (
        f"these known exceptions no longer occur: delete them from KNOWN_LAYER_EXCEPTIONS: {gone}"
    )


def test_no_import_circle_between_modules_at_module_level():
    assert [sorted(circle) for circle in _circles(module_level_only=True)] == []


def test_no_import_circle_through_lazy_imports_but_the_known_ones():
    circles = _circles(module_level_only=False)
    new = [sorted(circle) for circle in circles if circle not in KNOWN_CIRCLES]
    assert new == [], f"modules that import each other (inside functions or under TYPE_CHECKING): {new}"
    gone = [sorted(circle) for circle in set(KNOWN_CIRCLES) - set(circles)]
    assert gone == [], f"these known circles no longer occur: delete them from KNOWN_CIRCLES: {gone}"


def test_the_checks_see_imports_inside_functions_and_relative_imports():
    # The checks are only as good as the parser: a lazy import in a function body and a relative import count.
    engine_imports = {target for target, _ in _imports("hpc_classify.engine.engine", module_level_only=False)}
    assert (
        "hpc_classify.engine.batching" in engine_imports
        or "hpc_classify.engine.tokenization" in engine_imports
    )
    lazy = {target for target, _ in _imports("hpc_classify.driver.run", module_level_only=False)}
    eager = {target for target, _ in _imports("hpc_classify.driver.run", module_level_only=True)}
    assert "hpc_classify.cluster.connect" in lazy - eager


def test_light_parts_never_import_heavy_libraries():
    found = {
        (module, library): library
        for module in MODULES
        for library in _libraries(module)
        for forbidden in FORBIDDEN_LIBRARIES.get(_part(module), ())
        if library == forbidden or library.startswith(forbidden + ".")
    }
    assert sorted(set(found) - set(KNOWN_LIBRARY_EXCEPTIONS)) == []
    assert sorted(set(KNOWN_LIBRARY_EXCEPTIONS) - set(found)) == [], (
        "delete these from KNOWN_LIBRARY_EXCEPTIONS"
    )
