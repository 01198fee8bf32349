"""TEST-ONLY Dask worker preload for the Slurm fault tests: hold every classification at a gate.

Loaded with DASK_DISTRIBUTED__WORKER__PRELOAD='["<this file>"]' (sbatch exports the environment to the
workers); production code has no hook. It wraps `hpc_classify.classifiers.combine.predict_together`:

HPC_CLASSIFY_TEST_GATE_DIR: a directory; every classification first creates
    `started-<node>-<pid>-<n>` there, then waits while the file `hold` exists in it, so that a test can
    kill a node while each node has a file in flight, and then let the run go on. A file `open-<node>` lets
    that node's classifications through while `hold` still holds the others'. While the file `hold-start`
    exists, a worker starting (importing this preload) waits: a nanny's restart lasts as long as a test needs.
"""

from __future__ import annotations

import itertools
import os
import time

from hpc_classify.classifiers import combine

_real_predict = getattr(combine.predict_together, "__wrapped_original__", combine.predict_together)
_calls = itertools.count()


def _gated_predict(classifiers, frame, *args, **kwargs):
    gate = os.environ.get("HPC_CLASSIFY_TEST_GATE_DIR")
    if gate:
        node = os.environ.get("SLURMD_NODENAME", "local")
        open(os.path.join(gate, f"started-{node}-{os.getpid()}-{next(_calls)}"), "w").close()
        opened = os.path.join(gate, f"open-{node}")
        while os.path.exists(os.path.join(gate, "hold")) and not os.path.exists(opened):
            time.sleep(0.1)
    return _real_predict(classifiers, frame, *args, **kwargs)


_gated_predict.__wrapped_original__ = _real_predict
combine.predict_together = _gated_predict

_gate = os.environ.get("HPC_CLASSIFY_TEST_GATE_DIR")
while _gate and os.path.exists(os.path.join(_gate, "hold-start")):
    time.sleep(0.1)
