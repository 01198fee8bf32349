#!/usr/bin/env bash
# Install hpc-classify into a self-contained prefix on a shared filesystem and write its modulefiles.
#
#   env/install.sh PREFIX [--gpu] [--python PY] [--hf-home DIR] [--infiniband] [--setenv NAME=VALUE]...
#
# Creates (or updates, idempotently):
#   PREFIX/venv/                                  pinned requirements (env/requirements[-gpu].txt) + this package
#   PREFIX/modulefiles/hpc-classify/VERSION.lua   Lmod:                 module use PREFIX/modulefiles
#   PREFIX/modulefiles-tcl/hpc-classify/VERSION   Environment Modules:  module use PREFIX/modulefiles-tcl
#   PREFIX/hf-cache/                              shared model cache root (unless --hf-home): the module sets
#                                                 HF_HUB_CACHE=PREFIX/hf-cache/hub, filled by fetch-models
#
# Options:
#   --gpu             add the GPU extra (cudf-cu12, dask-cuda, distributed-ucxx-cu12) and GPU defaults
#   --python PY       interpreter for the venv (default: python3); Python >= 3.11
#   --hf-home DIR     shared model cache root instead of PREFIX/hf-cache, created (relative: to the current
#                     directory); the module sets HF_HUB_CACHE=DIR/hub, never HF_HOME (each user's login token)
#   --infiniband      force UCX over InfiniBand (default: UCX chooses transports itself)
#   --setenv N=V      bake another overridable default into the modulefile (e.g. UCX_NET_DEVICES=mlx5_0:1)
# Re-running with the same arguments reinstalls only this package (pins already satisfied) and rewrites the
# modulefiles atomically. Extra pip options (e.g. a CPU torch index) pass through PIP_* environment variables.
# Everything is created world-readable (umask 022); docs/modules.md says how to restrict it to one group.
set -euo pipefail
# All of it is for every user of the cluster: under a private umask (077) the prefix, the venv, the
# modulefiles and the model cache would be readable by the admin alone.
umask 022

die() { echo "install.sh: error: $*" >&2; exit 2; }
usage() { sed -n '2,23s/^# \{0,1\}//p' "$0"; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=""
GPU=0
PY="python3"
HF_ROOT=""
RENDER_ARGS=()

while [ $# -gt 0 ]; do
    case "$1" in
        --gpu) GPU=1 ;;
        --python) [ $# -ge 2 ] || die "--python needs a value"; PY="$2"; shift ;;
        --hf-home) [ $# -ge 2 ] && [ -n "$2" ] || die "--hf-home needs a value"; HF_ROOT="$2"; shift ;;
        --infiniband) RENDER_ARGS+=(--infiniband) ;;
        --setenv) [ $# -ge 2 ] || die "--setenv needs NAME=VALUE"; RENDER_ARGS+=(--setenv "$2"); shift ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [ -z "$PREFIX" ] || die "more than one PREFIX given ($PREFIX, $1)"; PREFIX="$1" ;;
    esac
    shift
done
[ -n "$PREFIX" ] || { usage >&2; die "PREFIX is required"; }

PY_VERSION="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" \
    || die "cannot run python '$PY'; pass --python /path/to/python3.11 or newer"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "'$PY' is Python $PY_VERSION: hpc-classify needs Python >= 3.11 (pass --python)"

mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd -P)"
VENV="$PREFIX/venv"
VERSION="$(sed -n 's/^__version__ *= *"\([^"]*\)".*/\1/p' "$REPO/hpc_classify/_version.py")"
[ -n "$VERSION" ] || die "cannot read __version__ from $REPO/hpc_classify/_version.py"

# The model cache root, made absolute (a relative one in the modulefile would be relative to each job's
# directory) and created now, before minutes of pip: an unwritable one fails here.
if [ -n "$HF_ROOT" ]; then
    mkdir -p "$HF_ROOT" || die "cannot create --hf-home $HF_ROOT"
    HF_ROOT="$(cd "$HF_ROOT" && pwd)"
    RENDER_ARGS+=(--hf-home "$HF_ROOT")
else
    HF_ROOT="$PREFIX/hf-cache"
    mkdir -p "$HF_ROOT"
fi
# Left by earlier modules, which set HF_HOME to this directory: `hf auth login` then wrote the user's token
# into it and made it private (0700), which hides the models from everyone else.
for secret in "$HF_ROOT/token" "$HF_ROOT/stored_tokens"; do
    [ ! -e "$secret" ] || echo "install.sh: warning: $secret is a Hugging Face login token in the shared cache" \
        "(\`hf auth login\` under an earlier module); its owner should move it to ~/.cache/huggingface/" >&2
done
if [ -n "$(find "$HF_ROOT" -maxdepth 0 -perm 700)" ]; then
    echo "install.sh: warning: $HF_ROOT is mode 0700 (as \`hf auth login\` leaves it): other users cannot" \
        "read the models in it; chmod 755 it" >&2
fi

if [ "$GPU" = 1 ]; then
    REQUIREMENTS="$REPO/env/requirements-gpu.txt"
    RENDER_ARGS+=(--gpu)
else
    REQUIREMENTS="$REPO/env/requirements.txt"
fi

# Reuse a working venv (idempotent re-runs); rebuild one whose interpreter is gone (e.g. Python was upgraded).
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    echo "install.sh: updating $VENV"
else
    echo "install.sh: creating $VENV with $("$PY" -V 2>&1)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi

PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
echo "install.sh: installing pinned requirements from ${REQUIREMENTS#"$REPO"/}"
"${PIP[@]}" install --quiet -r "$REQUIREMENTS"
# The package itself without its dependencies (the pins above are the environment), and always reinstalled,
# because pip would treat a same-version rebuild of a local directory as "already satisfied".
# Built from a clean copy: setuptools reuses REPO/build/lib, where a module deleted from the source would
# survive and be installed again; a copy also leaves the source tree (maybe read-only, shared) untouched.
echo "install.sh: installing hpc-classify $VERSION from $REPO"
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/hpc-classify-build.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
cp -R "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/hpc_classify" "$STAGE/"
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +
"${PIP[@]}" install --quiet --no-deps --force-reinstall "$STAGE"
# The pins must satisfy every declared requirement (ours and transitive): fail here, not on a compute node.
"${PIP[@]}" check
# The CPU attention kernel, built once for this machine's CPU kind into the venv (nodes of another kind build
# their own on first use); without a C++ compiler the engines run the bias attention.
"$VENV/bin/python" -m hpc_classify.cli.build_kernels || echo "install.sh: engines will use the bias attention"

"$VENV/bin/python" "$REPO/env/render_modulefiles.py" --prefix "$PREFIX" --version "$VERSION" \
    --venv-bin "$VENV/bin" ${RENDER_ARGS[@]+"${RENDER_ARGS[@]}"}
"${PIP[@]}" freeze --exclude-editable > "$PREFIX/venv/pip-freeze.txt"

cat <<EOF
install.sh: done.
  Lmod:                 module use $PREFIX/modulefiles && module load hpc-classify/$VERSION
  Environment Modules:  module use $PREFIX/modulefiles-tcl && module load hpc-classify/$VERSION
  Models (login node):  HF_HUB_OFFLINE=0 hpc-classify fetch-models --classifier domain quality multilingual-domain
EOF
