"""Render the Lmod (Lua) and Environment Modules (Tcl) modulefiles of one hpc-classify installation.

Called by env/install.sh with the venv's Python; standard library only, so it also runs from a bare python3.
Both flavours come from the same list of defaults (`module_defaults`) so they cannot drift apart.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def module_defaults(
    prefix: str, hf_home: str | None, gpu: bool, infiniband: bool, site: list[tuple[str, str]]
) -> list[tuple[str, str, str]]:
    """(name, value, why) of every overridable default, in the order the modulefile sets them."""
    defaults = [
        # The hub cache only, never HF_HOME: HF_HOME also holds each user's login token (`hf auth login`
        # writes $HF_HOME/token and makes $HF_HOME private), which must stay in the user's own home.
        ("HF_HUB_CACHE", f"{hf_home or f'{prefix}/hf-cache'}/hub", "shared model cache, seen by every node"),
        # Compute nodes usually have no internet: fail fast with our hint instead of hub timeouts.
        ("HF_HUB_OFFLINE", "1", "no hub access from compute nodes (fetch-models first)"),
        ("HF_HUB_DISABLE_TELEMETRY", "1", "no phone-home from batch jobs"),
        # Hundreds of workers connecting at once to one scheduler need more than Dask's 30 s.
        ("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "120s", "Dask connect timeout at scale"),
        # Importing cudf/rmm must not create a CUDA context before dask-cuda pins the worker's GPU.
        ("RAPIDS_NO_INITIALIZE", "1", "no CUDA context at import time"),
        # UCX warns about every UCX_* variable it does not use (e.g. UCX_MEMTYPE_CACHE on CPU nodes).
        ("UCX_WARN_UNUSED_ENV_VARS", "n", "quiet UCX about unused UCX_* variables"),
    ]
    if gpu:
        # With a CUDA context created first, UCX itself finds which NIC/transport each GPU should use.
        defaults.append(
            ("DASK_DISTRIBUTED_UCXX__CREATE_CUDA_CONTEXT", "True", "let UCX detect GPU/NIC affinity")
        )
    if infiniband:
        # distributed-ucxx reads its own namespace first and falls back to the legacy distributed.comm.ucx one;
        # setting both keeps older Dask configs consistent. Without this flag UCX picks transports itself.
        defaults += [
            ("DASK_DISTRIBUTED_UCXX__INFINIBAND", "True", "UCX over InfiniBand (rc transport)"),
            ("DASK_DISTRIBUTED__COMM__UCX__INFINIBAND", "True", "same, legacy Dask config name"),
        ]
    if any(name == "HF_HOME" for name, _ in site) and not any(name == "HF_HUB_CACHE" for name, _ in site):
        # The site's HF_HOME names the cache ($HF_HOME/hub, with the token caveat above): ours would override it.
        defaults = [default for default in defaults if default[0] != "HF_HUB_CACHE"]
    defaults += [(name, value, "site setting (install.sh --setenv)") for name, value in site]
    seen: set[str] = set()
    unique = []
    for name, value, why in reversed(defaults):  # a later (site) value replaces a built-in one
        if name not in seen:
            seen.add(name)
            unique.append((name, value, why))
    return list(reversed(unique))


# A default that is not set either when the user (or site) set one of these before loading: they already say
# where the cache is (huggingface_hub reads HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub).
YIELDS_TO = {"HF_HUB_CACHE": ("HF_HOME", "HUGGINGFACE_HUB_CACHE")}


def lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tcl_string(value: str) -> str:
    # Braces quote everything in Tcl except unbalanced braces and a trailing backslash, which we refuse.
    if value.count("{") != value.count("}") or value.endswith("\\"):
        raise ValueError(f"value {value!r} cannot be quoted for Tcl")
    return "{" + value + "}"


def _unless(name: str) -> str:
    return f" (not if {' or '.join(YIELDS_TO[name])} is set)" if name in YIELDS_TO else ""


def _lua_unless(name: str) -> str:
    return (
        ", {" + ", ".join(lua_string(other) for other in YIELDS_TO[name]) + "}" if name in YIELDS_TO else ""
    )


def _tcl_unless(name: str) -> str:
    return " {" + " ".join(YIELDS_TO[name]) + "}" if name in YIELDS_TO else ""


def render(template: str, fields: dict[str, str]) -> str:
    for key, value in fields.items():
        template = template.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z_]+@", template)
    if left:
        raise ValueError(f"unfilled placeholders {left}")
    return template


def write_atomically(path: Path, text: str) -> None:
    # Users may be loading the module while an admin re-runs install.sh: never show a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--venv-bin", required=True)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--infiniband", action="store_true")
    parser.add_argument(
        "--hf-home",
        default=None,
        help="shared cache root: the module sets HF_HUB_CACHE=DIR/hub (default PREFIX/hf-cache)",
    )
    parser.add_argument("--setenv", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)

    site = []
    for item in args.setenv:
        name, sep, value = item.partition("=")
        if not sep or not NAME_RE.match(name) or "\n" in value:
            parser.error(
                f"--setenv {item!r}: expected NAME=VALUE with a shell-style NAME and a one-line value"
            )
        site.append((name, value))
    prefix = str(Path(args.prefix).resolve())
    # A relative --hf-home would be each job's own directory, relative to wherever it starts.
    hf_home = os.path.abspath(os.path.expanduser(args.hf_home)) if args.hf_home else None
    defaults = module_defaults(prefix, hf_home, args.gpu, args.infiniband, site)
    flavour = "gpu" if args.gpu else "cpu"
    width = max(len(name) for name, _, _ in defaults)
    vwidth = max(len(value) for _, value, _ in defaults)
    fields = {
        "PREFIX": prefix,
        "VERSION": args.version,
        "VENV_BIN": args.venv_bin,
        "FLAVOUR": flavour,
        "HELP_DEFAULTS": "\n".join(
            f"    {n:<{width}} = {v:<{vwidth}}  # {why}{_unless(n)}" for n, v, why in defaults
        ),
        "LUA_DEFAULTS": "\n".join(
            f"default_env({lua_string(n)}, {lua_string(v)}{_lua_unless(n)})" for n, v, _ in defaults
        ),
        "TCL_DEFAULTS": "\n".join(f"default_env {n} {tcl_string(v)}{_tcl_unless(n)}" for n, v, _ in defaults),
    }
    for value in (prefix, args.venv_bin):
        if '"' in value or "{" in value or "}" in value or "]]" in value:
            parser.error(f"path {value!r} contains quotes or braces; choose a plainer PREFIX")
    lua = render((HERE / "modulefile.lua.in").read_text(), fields)
    tcl = render((HERE / "modulefile.tcl.in").read_text(), fields)
    write_atomically(Path(prefix) / "modulefiles" / "hpc-classify" / f"{args.version}.lua", lua)
    write_atomically(Path(prefix) / "modulefiles-tcl" / "hpc-classify" / args.version, tcl)
    print(f"modulefiles: {prefix}/modulefiles/hpc-classify/{args.version}.lua (Lmod)")
    print(f"             {prefix}/modulefiles-tcl/hpc-classify/{args.version} (Environment Modules)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
