"""The "tiled" CPU attention: DeBERTa's relative-position terms added per tile of query rows in C++.

Today's CPU path (attention.py `_attend`) adds the c2p and p2c products into a [B, H, L, L] bias and hands it
to PyTorch's CPU scaled-dot-product attention, which runs at about a quarter of the bf16 matmul peak with a
bias input (docs/attention.md). Here the scores come from one batched matmul, the c2p and p2c products from
one each over only the offsets each window of rows meets (`window_products`), `csrc/tiled_attention.cpp`
adds c2p + p2c, masks and takes the softmax in place (fp32 arithmetic, 16 query rows per tile, no bias
tensor), and a second batched matmul applies the probabilities to the values. In bf16 on a CPU with AVX-512
BF16 the kernel computes q.k, c2p and p2c itself, per 16 x 16 block of a tile with vdpbf16ps (`uses_fused`):
no scores or position products are written, and each term costs its least, L x L x d multiply-adds.

The C++ file is compiled on first use (torch.utils.cpp_extension, about a minute on 2 cores) for the
instruction set torch itself dispatches to here (AVX-512, AVX2 or the portable default), and cached under
`$HPC_CLASSIFY_KERNEL_CACHE`, else `<venv>/share/hpc_classify/kernels` (beside the installation, which the
cluster's nodes share) where that is writable, else `~/.cache/hpc_classify/kernels`, as `<name>.so`, the name
a hash of the torch version, instruction set and source, so each CPU kind gets its own build. A build runs in
its own directory under the cache root and renames the finished library into place, so that the final path
exists only whole and no process waits on another's (or a killed build's) lock. `python -m
hpc_classify.cli.build_kernels` builds it ahead (bootstrap.sh and env/install.sh do). Where it cannot be
built (no C++ compiler), `unavailable_reason()` says why and the engine keeps the bias path.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch
from torch.nn import functional as F

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "tiled_attention.cpp"
CACHE_ENV = "HPC_CLASSIFY_KERNEL_CACHE"
SCRATCH = ".building"  # the suffix of a builder's own directory under the cache root
ABANDONED_AFTER_S = 24 * 3600  # a builder's directory this old is a killed build's (a build takes minutes)
# What torch.backends.cpu.get_cpu_capability() reports -> the flags at::vec needs for the same code path.
ISA_FLAGS = {
    "AVX512": [
        "-mavx512f",
        "-mavx512bw",
        "-mavx512vl",
        "-mavx512dq",
        "-mfma",
        "-mavx2",
        "-DCPU_CAPABILITY=AVX512",
        "-DCPU_CAPABILITY_AVX512",
    ],
    "AVX2": ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"],
}
# Query rows per window of the position products: each window needs L + 127 offsets instead of 2L-1 (0.63x
# the work at L = 486). Smaller windows do fewer FLOPs but in matmuls too small to run near the peak
# (docs/attention.md, measured on a Zen 4 VM: 128 and 256 alike, 64 a little slower, 16 slower than one window).
WINDOW_ROWS = 128
TILE_ROWS = 16  # the kernel's tile (kRows): a window holds whole tiles


def tiled_attend(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    blocked: torch.Tensor | None,
    pos_key: torch.Tensor,
    pos_query: torch.Tensor,
    scale: float,
    *,
    window_rows: int | None = None,
    fused: bool | None = None,
) -> torch.Tensor:
    """softmax(q.k / scale + c2p + p2c, blocked -> lowest) @ v for [B, H, L, d] CPU inputs (`blocked`:
    [B, 1, L, L] bool or None); the [H, 2L-1, d] position projections are already divided by `scale`.
    `window_rows` (a multiple of 16; default WINDOW_ROWS): query rows (and keys) per window of the position
    products. `fused`: compute c2p and p2c inside the kernel (bf16 with AVX-512 BF16 only), or not; None:
    where `uses_fused` says so."""
    window_rows = WINDOW_ROWS if window_rows is None else window_rows
    if window_rows <= 0 or window_rows % TILE_ROWS:
        raise ValueError(f"window_rows must be a positive multiple of {TILE_ROWS}, not {window_rows}")
    length = query.size(-2)
    if fused is None:
        fused = query.size(-1) % 2 == 0 and uses_fused(query.dtype)  # vdpbf16ps takes pairs
    if fused:
        return _fused_attend(query, key, value, blocked, pos_key, pos_query, scale)
    rows = min(length, window_rows)  # one window over all 2L-1 offsets for short documents
    c2p, p2c = window_products(query, key, pos_key, pos_query, rows)
    scores = _scaled_scores(query, key, scale)
    with torch.profiler.record_function("tiled_attention_probabilities_"):  # a profile shows the kernel
        _kernel().attention_probabilities_(scores, c2p, p2c, _kernel_mask(blocked))
    del c2p, p2c
    return _apply(scores, value)


def uses_fused(dtype: torch.dtype) -> bool:
    """Whether `tiled_attend` computes the position terms inside the kernel for inputs of `dtype`: bf16 (the
    kernel's vdpbf16ps multiplies bf16 pairs) on a CPU with AVX-512 BF16 (the built kernel asks the CPU), and
    without AMX: there oneDNN runs the windows' matmuls on the tile unit, and the fused kernel was measured
    faster only on a CPU without it (docs/attention.md)."""
    if dtype != torch.bfloat16:
        return False
    module, _ = _load()
    has_amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    return module is not None and bool(module.fused_supported()) and not has_amx


def _fused_attend(query, key, value, blocked, pos_key, pos_query, scale) -> torch.Tensor:
    """tiled_attend with q.k, c2p and p2c computed per 16 x 16 block inside the kernel (none written): keys
    and position projections are packed in pairs of the head dimension, keys (or offsets) inner, as
    vdpbf16ps reads them; the query is read in place."""
    batch, heads, length, _ = query.shape
    probabilities = query.new_empty(batch * heads, length, length)
    with torch.profiler.record_function("fused_attention_probabilities_"):
        _kernel().fused_attention_probabilities_(
            probabilities,
            query,
            _pairs_inner(key, (0, TILE_ROWS)),
            _pairs_inner(pos_key, (TILE_ROWS, 2 * TILE_ROWS)),
            _pairs_inner(pos_query, (TILE_ROWS, 2 * TILE_ROWS), reverse=True),  # see the C++ file
            _kernel_mask(blocked),
            1.0 / scale,
        )
    return _apply(probabilities, value)


def _scaled_scores(query, key, scale) -> torch.Tensor:
    """The windows kernel's input: q.k / scale as [B*H, L, L], turned into probabilities in place."""
    batch, heads, length, _ = query.shape
    return torch.matmul(query, key.transpose(-1, -2) * (1.0 / scale)).view(batch * heads, length, length)


def _kernel_mask(blocked: torch.Tensor | None) -> torch.Tensor | None:
    """Both kernels' padding mask: [B, L, L], contiguous (the heads share it), or None."""
    return None if blocked is None else blocked[:, 0].contiguous()


def _apply(probabilities: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """[B*H, L, L] probabilities @ [B, H, L, d] values -> [B, H, L, d]."""
    batch, heads, length, _ = value.shape
    return torch.matmul(probabilities.view(batch, heads, length, length), value)


def _pairs_inner(rows: torch.Tensor, padding: tuple[int, int], *, reverse: bool = False) -> torch.Tensor:
    """[..., N, d] bf16 (last dimension contiguous) -> [..., d/2, before + N + after, 2]: row n's pair p at
    [..., p, before + n, :] (`reverse`: row N - 1 - n's), between zero rows (the kernel's windows of 16 lanes
    reach past both ends). Each pair is moved as one 32-bit word: a transposing copy of bf16 pairs (an inner
    dimension of 2) ran 3x slower (docs/attention.md)."""
    before, after = padding
    *outer, count, size = rows.shape
    words = rows.view(torch.int32)  # [..., N, d/2]: one word per pair
    if reverse:
        words = words.flip(-2)
    packed = words.new_empty(*outer, size // 2, before + count + after)
    packed[..., :before].zero_()
    packed[..., before + count :].zero_()
    packed[..., before : before + count].copy_(words.transpose(-1, -2))
    return packed.view(torch.bfloat16).view(*outer, size // 2, before + count + after, 2)


def window_products(
    query: torch.Tensor, key: torch.Tensor, pos_key: torch.Tensor, pos_query: torch.Tensor, rows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """c2p and p2c [H, T, B, rows, L + rows - 1] (T = ceil(L / rows)): for each block of `rows` queries
    (c2p) or keys (p2c), the products over only the L + rows - 1 offsets that block meets, not all 2L-1.

    Block t's window starts at offset column s_t = L - rows * (t + 1), so row i = t * rows + r reads
    column (j - i + L - 1) - s_t = j - r + rows - 1 for key j; the same for p2c with query and key swapped.
    Columns before offset 0 (only the padded rows of the last block meet them) repeat offset 0. The
    documents of a chunk are stacked under each (head, window) so that one matmul per window serves them all
    (a [B, ...] batch dimension would copy the windows once per document)."""
    batch, heads, length, size = query.shape
    blocks = -(-length // rows)
    width = length + rows - 1
    starts = length - rows * torch.arange(1, blocks + 1, device=query.device)
    columns = (starts[:, None] + torch.arange(width, device=query.device)).clamp_(min=0).flatten()
    padding = (0, 0, 0, blocks * rows - length)  # whole blocks of rows

    def product(states: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        windows = positions.index_select(1, columns).view(heads * blocks, width, size)
        padded = F.pad(states, padding) if padding[-1] else states
        stacked = padded.view(batch, heads, blocks, rows, size).permute(1, 2, 0, 3, 4)
        products = torch.bmm(stacked.reshape(heads * blocks, batch * rows, size), windows.transpose(1, 2))
        return products.view(heads, blocks, batch, rows, width)

    return product(query, pos_key), product(key, pos_query)


def unavailable_reason() -> str | None:
    """Why the tiled kernel cannot run in this process (None: it is built and loaded)."""
    return _load()[1]


def _kernel() -> ModuleType:
    module, reason = _load()
    if module is None:
        raise RuntimeError(reason)
    return module


@functools.cache  # once per process, a failure included: a failed build is not retried in every layer
def _load() -> tuple[ModuleType | None, str | None]:
    try:
        return _import_or_build(), None
    except Exception as error:  # a missing compiler, ninja or header: any build failure means "bias"
        lines = str(error).strip().splitlines() or [type(error).__name__]
        first_error = next((line for line in lines if "error:" in line), lines[-1])  # the compiler's
        return None, f"the tiled CPU attention kernel could not be built: {first_error.strip()}"


def _name_and_flags() -> tuple[str, list[str]]:
    """The kernel's module name (a hash of the source, the torch version and the flags) and its flags."""
    # -fopenmp: at::parallel_for is inline and runs serially unless OpenMP is on where it is compiled.
    flags = ["-O3", "-fopenmp", *ISA_FLAGS.get(torch.backends.cpu.get_cpu_capability(), [])]
    stamp = hashlib.sha256("\0".join([SOURCE.read_text(), torch.__version__, *flags]).encode()).hexdigest()
    return f"hpc_tiled_attention_{stamp[:16]}", flags


def _import_or_build() -> ModuleType:
    name, flags = _name_and_flags()
    roots = _cache_roots()
    for root in roots:
        # <root>/<name>.so only ever appears by a rename of a finished build: it exists whole or not at all.
        # (The old layout, <root>/<name>/<name>.so beside torch's `lock`, is ignored: a killed build left
        # a lock that made every later process wait forever, and perhaps a partial .so.)
        if (root / f"{name}.so").exists():
            return _import(name, root / f"{name}.so")
    for root in roots:
        builder = f"{name}.{socket.gethostname()}.{os.getpid()}."  # whose it is, if it is left behind
        try:
            root.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=builder, suffix=SCRATCH, dir=root))
        except OSError:
            continue
        logger.info("building the tiled CPU attention kernel once for this CPU kind in %s", root)
        _remove_abandoned(root)
        try:
            return _import(name, _build(name, flags, scratch))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    raise RuntimeError(f"no writable directory to build it in: {', '.join(map(str, roots))}")


def _import(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, path, loader=importlib.machinery.ExtensionFileLoader(name, str(path))
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(name: str, flags: list[str], scratch: Path) -> Path:
    """Build in `scratch` (this process's own directory under the cache root) and publish the library as
    <root>/<name>.so; its path. Concurrent builders (several workers on fresh nodes) each build, none waits on
    another: no file locks, which a killed build leaves behind and which shared file systems do not honour."""
    root = scratch.parent
    if shutil.which("ninja") is None:  # torch's builder runs `ninja`: the pip package ships one
        import ninja

        os.environ["PATH"] = f"{ninja.BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"
    # In a child process: torch's builder would name a second build in this process `<name>_v1` (it keys on
    # the build directory, new each time; tests clear `_load`), and the child imports the library, so that
    # only one that loads is published.
    arguments = {
        "name": name,
        "sources": [str(SOURCE)],
        "extra_cflags": flags,
        "extra_ldflags": ["-fopenmp"],
        "build_directory": str(scratch),
    }
    child = subprocess.run(
        [sys.executable, "-c", _BUILD_CHILD, json.dumps(arguments)], capture_output=True, text=True
    )
    if child.returncode:
        raise RuntimeError(child.stderr.strip() or child.stdout.strip() or f"exit status {child.returncode}")
    final = root / f"{name}.so"
    # Never over a published one (a concurrent builder's, identical): on NFS a node running it would lose it.
    if not final.exists():
        os.replace(scratch / f"{name}.so", final)  # atomic: the final path's existence means "whole"
    return final


# The child unblocks every signal first: built inside a local cluster's worker it inherits SIGTERM blocked
# (cluster/worker_signals.py), and it, ninja and the compilers must end on a plain SIGTERM like any process.
_BUILD_CHILD = """
import json, signal, sys
signal.pthread_sigmask(signal.SIG_SETMASK, ())
from torch.utils import cpp_extension
try:
    cpp_extension.load(**json.loads(sys.argv[1]))
except Exception as error:
    sys.exit(str(error))
"""


def _remove_abandoned(root: Path) -> None:
    """Best effort (never fails a build): remove the directories of builders killed long ago."""
    try:
        for scratch in root.glob(f"*{SCRATCH}"):
            if time.time() - scratch.stat().st_mtime > ABANDONED_AFTER_S:
                shutil.rmtree(scratch, ignore_errors=True)
    except OSError:
        pass


def _cache_roots() -> list[Path]:
    """Where built kernels are looked for, in order; the first writable one is built in."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return [Path(configured)]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [Path(sys.prefix) / "share" / "hpc_classify" / "kernels", Path(cache) / "hpc_classify" / "kernels"]


def main() -> int:
    """Build the kernel ahead (bootstrap, a login node): exit status 1 with the reason where it cannot be."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    reason = unavailable_reason()
    print(reason or f"tiled CPU attention kernel ready: {_kernel().__file__}")
    return 1 if reason else 0
