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
def mounted(what: str, mountpoint: Path, *args: str) -> Iterator[Path]:
    """`mount *args mountpoint` at `mountpoint` (created), unmounted afterwards; the test is skipped where
    it cannot be mounted (not root, or no mount permission in a container). `what` names it in the skip."""
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root")
    mountpoint.mkdir()
    try:
        mount(*args, str(mountpoint))
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount {what} here: {exc}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, timeout=60)


def tmpfs(mountpoint: Path, options: str) -> contextlib.AbstractContextManager[Path]:
    """A tmpfs mounted with `options` at `mountpoint` (see `mounted`)."""
    return mounted("a tmpfs", mountpoint, "-t", "tmpfs", "-o", options, "tmpfs")


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


def bind_mount(source: Path, target: Path) -> contextlib.AbstractContextManager[Path]:
    """`source` bind-mounted at `target` (see `mounted`): one directory at two paths with no link between
    them."""
    return mounted("a bind mount", target, "--bind", str(source))
