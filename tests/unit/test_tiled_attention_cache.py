"""The tiled kernel's cache (engine/tiled_attention.py): what killed builds leave behind (torch's `lock`, a
partial library, a builder's own directory) stops neither a later build nor a load, and a published kernel
is loaded without a rebuild. One real build (about a minute on 2 cores) serves the whole module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpc_classify.engine import tiled_attention

# A build takes 1-2 minutes on 2 cores; the old cache waited on a killed build's lock forever.
BUILD_TIMEOUT_S = 600
REPO_ROOT = Path(tiled_attention.__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def killed_builds_cache(tmp_path_factory) -> tuple[Path, Path, int | None, str]:
    """A cache root as killed builds leave it, then `build_kernels` run on it in a child process, killed
    after BUILD_TIMEOUT_S: (root, a recent builder's directory, exit status or None on a timeout, output)."""
    root = tmp_path_factory.mktemp("kernel-cache")
    name, _ = tiled_attention._name_and_flags()
    old_layout = root / name  # the previous layout: a lock and a half-linked library
    old_layout.mkdir()
    (old_layout / "lock").touch()
    (old_layout / f"{name}.so").write_bytes(b"\x7fELF" + bytes(1000))
    recent, abandoned = (root / f"{name}.node{i}.{100 + i}.x{i}{tiled_attention.SCRATCH}" for i in (1, 2))
    for scratch in (recent, abandoned):  # builders killed while they linked
        scratch.mkdir()
        (scratch / "lock").touch()
        (scratch / f"{name}.so").write_bytes(b"\x7fELF")
    two_days_ago = time.time() - 2 * 86400
    os.utime(abandoned, (two_days_ago, two_days_ago))
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    )
    env[tiled_attention.CACHE_ENV] = str(root)
    with subprocess.Popen(
        [sys.executable, "-m", "hpc_classify.cli.build_kernels"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a timeout ends the compiler too
    ) as child:
        try:
            output, _ = child.communicate(timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            output, _ = child.communicate()
            return root, recent, None, output
    return root, recent, child.returncode, output


def test_a_killed_build_s_lock_and_partial_library_stop_no_build(killed_builds_cache) -> None:
    root, _, status, output = killed_builds_cache
    assert status is not None, f"no kernel after {BUILD_TIMEOUT_S} s (waiting on the stale lock?): {output}"
    assert status == 0, output
    name, _ = tiled_attention._name_and_flags()
    assert f"tiled CPU attention kernel ready: {root / f'{name}.so'}" in output
    assert (root / name / "lock").exists()  # the old layout is ignored, not taken over


def test_builders_directories_only_long_abandoned_ones_are_removed(killed_builds_cache) -> None:
    """The build went ahead beside a recent builder's directory (perhaps one still at work) and left it; it
    removed the day-old one, and its own."""
    root, recent, status, output = killed_builds_cache
    assert status == 0, output
    assert list(root.glob(f"*{tiled_attention.SCRATCH}")) == [recent]


def test_a_published_kernel_is_loaded_without_a_rebuild(killed_builds_cache, monkeypatch) -> None:
    """From <root>/<name>.so (recorded as it is imported: a module of the same name loaded earlier in this
    process, from another cache, would keep that one's __file__)."""
    root, recent, status, output = killed_builds_cache
    assert status == 0, output
    assert recent.exists()  # a load is not stopped by it either
    imported = []

    def no_build(*args) -> None:
        raise AssertionError("rebuilt")

    def recording_import(name, path):
        imported.append(path)
        return real_import(name, path)

    real_import = tiled_attention._import
    monkeypatch.setenv(tiled_attention.CACHE_ENV, str(root))
    monkeypatch.setattr(tiled_attention, "_build", no_build)
    monkeypatch.setattr(tiled_attention, "_import", recording_import)
    tiled_attention._load.cache_clear()
    try:
        assert tiled_attention.unavailable_reason() is None
        name, _ = tiled_attention._name_and_flags()
        assert imported == [root / f"{name}.so"]
        assert tiled_attention._kernel().fused_supported() in (True, False)  # it runs
    finally:
        tiled_attention._load.cache_clear()
