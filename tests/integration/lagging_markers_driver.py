"""TEST-ONLY driver entry point: `hpc-classify` whose listings of `_markers/` miss one marker during an
--overwrite's discard, as an NFS client's cached listing does for up to a minute after another node wrote it.

Run as `python lagging_markers_driver.py run ...` by test_overwrite_lagging_listing.py, with
HPC_TEST_HIDDEN_MARKER naming the marker's path; production code has no hook. Only listings by path lag
(os.scandir and os.listdir of the marker's directory), and only while the discard runs: shutil.rmtree lists
by file descriptor, as a listing made once the cache expired (a discard of many markers takes minutes) finds
every entry; a lookup by its name always finds the marker.
"""

from __future__ import annotations

import os
import sys

from hpc_classify.cli.main import main
from hpc_classify.driver import fingerprint

HIDDEN = os.environ["HPC_TEST_HIDDEN_MARKER"]
_real_scandir, _real_listdir = os.scandir, os.listdir


class _Listing(list):
    """What os.scandir returns (a context manager and an iterable), over the entries given."""

    def __enter__(self) -> _Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass


def _lags(path: object) -> bool:
    return isinstance(path, str) and os.path.abspath(path) == os.path.dirname(HIDDEN)


def _hide(path: object, name: str) -> bool:
    """Whether the listing of `path` leaves `name` out; says so on stderr (the test checks the lag was staged)."""
    if _lags(path) and name == os.path.basename(HIDDEN):
        print(f"TEST: a listing of {path} missed {name}", file=sys.stderr)
        return True
    return False


def _lagging_scandir(path=".", *args):
    entries = list(_real_scandir(path, *args))
    return _Listing(e for e in entries if not _hide(path, e.name))


def _lagging_listdir(path="."):
    return [name for name in _real_listdir(path) if not _hide(path, name)]


_real_discard = fingerprint.discard_run_state


def _discard_with_a_lagging_listing(*args, **kwargs):
    os.scandir, os.listdir = _lagging_scandir, _lagging_listdir
    try:
        return _real_discard(*args, **kwargs)
    finally:
        os.scandir, os.listdir = _real_scandir, _real_listdir


if __name__ == "__main__":
    fingerprint.discard_run_state = _discard_with_a_lagging_listing
    sys.exit(main(sys.argv[1:]))
