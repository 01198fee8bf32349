"""Reading (or writing) files as another user would, for tests of a cache shared between users.

As root, `hand_over` gives a tree to another uid (chown) and `run_as_other_user` runs Python as root without
the capabilities that let root read and write anything (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): the file
modes then decide, as for any user who is neither the files' owner nor in their group. A user who may not
chown gets the same outcome by copying each path's "other" permission bits onto its owner bits: the kernel
checks the owner bits of the owner, who is then no better off than anybody else.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

OTHER_UID = 4242  # no one's: the files' owner, as seen by the reader
REPO_ROOT = Path(__file__).resolve().parents[1]

# Run first in the child: as root, drop what lets root ignore file modes (capset(2): a process may always
# give up capabilities; the real uid stays 0, so access(2) checks the permitted set, dropped too).
_DROP_DAC = """
import ctypes, os
if os.geteuid() == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    class _Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class _Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
    header, data = _Header(0x20080522, 0), (_Data * 2)()
    assert libc.capget(ctypes.byref(header), data) == 0, ctypes.get_errno()
    dac = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    data[0].effective &= ~dac
    data[0].permitted &= ~dac
    assert libc.capset(ctypes.byref(header), data) == 0, ctypes.get_errno()
"""


def hand_over(root: Path) -> None:
    """Make every path under `root` (itself included) another user's, with its modes as they are."""
    for path in [root, *root.rglob("*")]:
        if os.geteuid() == 0:
            os.lchown(path, OTHER_UID, OTHER_UID)
        elif not path.is_symlink():
            mode = stat.S_IMODE(path.lstat().st_mode)
            os.chmod(path, (mode & ~0o700) | ((mode & 0o007) << 6))


def run_as_other_user(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -c code` as a user who owns nothing that `hand_over` handed over; `env` is added to ours."""
    path = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", _DROP_DAC + code],
        env={**os.environ, "PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
