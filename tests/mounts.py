"""File systems that refuse writes or reads, for real, for the tests of what happens then: tmpfs mounts (root
only: tests/faults/test_output_faults.py fills one up and remounts it read-only), directories this process
cannot write into, whoever runs the tests (root writes through permission bits: it gets a read-only tmpfs),
commands that permission bits bind, root's included (`bound_by_permissions`: unreadable directories), and
bind mounts (one directory at two paths)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def tmpfs(mountpoint: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted with `options` at `mountpoint` (created), unmounted afterwards; the test is skipped
    where it cannot be mounted (not root, or no mount permission in a container)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mountpoint.mkdir()
    try:
        mount("-t", "tmpfs", "-o", options, "tmpfs", str(mountpoint))
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, timeout=60)


@contextlib.contextmanager
def freezable_directory(path: Path) -> Iterator[Callable[[], None]]:
    """A fresh directory at `path`, writable until the function this yields is called; from then on this
    process cannot write into it: a tmpfs remounted read-only when running as root, else mode 0555.
    Undone afterwards (unmounted, or writable again so that pytest can remove it)."""
    if os.geteuid() == 0:
        with tmpfs(path, "size=1m") as mountpoint:
            yield lambda: mount("-o", "remount,ro", str(mountpoint))
        return
    path.mkdir()
    try:
        yield lambda: path.chmod(0o555)
    finally:
        path.chmod(0o755)


def bound_by_permissions(probe: Path) -> list[str]:
    """A command prefix under which a process obeys permission bits, whoever runs the tests: nothing for
    another user; for root, `setpriv` dropping the capabilities that bypass them (DAC override, read and
    search) from what the command may hold. Skips the test where that cannot be done: `probe` is a directory
    the caller made unreadable (mode 000), and the prefix must be unable to list it."""
    prefix = []
    if os.geteuid() == 0:
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    try:
        subprocess.run([*prefix, "ls", str(probe)], check=True, capture_output=True, timeout=60)
    except FileNotFoundError as exc:
        pytest.skip(f"cannot drop root's permission override here: {exc}")
    except subprocess.CalledProcessError:
        return prefix
    pytest.skip("this process reads a mode-000 directory even with its permission override dropped")


@contextlib.contextmanager
def bind_mount(source: Path, target: Path) -> Iterator[Path]:
    """`source` bind-mounted at `target` (created): one directory at two paths with no link between them;
    unmounted afterwards. Skipped where it cannot be mounted (not root, or no mount permission)."""
    if os.geteuid() != 0:
        pytest.skip("a bind mount needs root")
    target.mkdir()
    try:
        mount("--bind", str(source), str(target))
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot bind-mount here: {exc}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, timeout=60)
