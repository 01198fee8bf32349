"""TEST-ONLY driver entry point: `hpc-classify` killed in the middle of an --overwrite's discard.

Run as `python discard_crash_driver.py run ...` by test_overwrite_fence.py; production code has no hook. It
wraps `driver.stale_outputs.remove_output_of`, which the discard calls once per marker of the old run: the
process dies (os._exit, as a SIGKILL would leave it: no cleanup) right after the first old output is removed,
with the others and all the old run's bookkeeping still there.
"""

from __future__ import annotations

import os
import sys

from hpc_classify.cli.main import main
from hpc_classify.driver import stale_outputs

_real_remove_output_of = stale_outputs.remove_output_of


def _dying_remove_output_of(*args, **kwargs):
    removed = _real_remove_output_of(*args, **kwargs)
    if removed:
        os._exit(17)
    return removed


if __name__ == "__main__":
    stale_outputs.remove_output_of = _dying_remove_output_of
    sys.exit(main(sys.argv[1:]))
