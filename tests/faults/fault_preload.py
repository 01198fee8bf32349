"""TEST-ONLY Dask worker preload for the fault tier: real process deaths and stalls inside the model call.

Loaded with DASK_DISTRIBUTED__WORKER__PRELOAD='["<this file>"]'; production code has no hook. It wraps
`hpc_classify.classifiers.combine.predict_together` (looked up by the task at call time):

HPC_CLASSIFY_TEST_POISON: a document containing this text makes the worker process die by SIGSEGV, every
    time, as a tokenizer or model crash would. While another task runs in the process (through the solo
    gate), the crash waits until that task has reached the model: it dies in the middle of its file.
HPC_CLASSIFY_TEST_POISON_BESIDE=1: the crash of a task not run solo always waits (up to 120 s) for another task
    of its process to reach the model, even one not through the gate yet: on a busy machine the second task
    thread can start after the poison is read, and the death was then one before that task began.
HPC_CLASSIFY_TEST_STALL_DIR: a directory; every classification first creates `started-<pid>` there, then
    waits forever (until the worker is killed), so that a test can kill workers mid-file. While a file
    `no-workers` exists in it, a worker process exits as soon as it starts (a node that cannot run one:
    the nanny's restarts never reach the scheduler).
HPC_CLASSIFY_TEST_STALL_TEXT: with the stall directory, only a classification of documents containing this
    text stalls; the others run (files finish before the stall).
"""

from __future__ import annotations

import os
import signal
import threading

from hpc_classify.classifiers import combine
from hpc_classify.driver.solo_gate import GATE

_stall_dir = os.environ.get("HPC_CLASSIFY_TEST_STALL_DIR")
if _stall_dir and os.path.exists(os.path.join(_stall_dir, "no-workers")):
    os._exit(1)

_real_predict = getattr(combine.predict_together, "__wrapped_original__", combine.predict_together)
_innocent_in_model = threading.Event()  # a task of this process called the model with harmless documents


def _faulty_predict(classifiers, frame, *args, **kwargs):
    poison = os.environ.get("HPC_CLASSIFY_TEST_POISON")
    if poison and frame[classifiers[0].text_field].astype(str).str.contains(poison, regex=False).any():
        beside_asked = os.environ.get("HPC_CLASSIFY_TEST_POISON_BESIDE") == "1" and not GATE._solo_running  # noqa: SLF001
        if beside_asked:
            _innocent_in_model.wait(timeout=120)
        elif GATE._running > 1:  # noqa: SLF001 - a task beside this one: crash while it classifies
            _innocent_in_model.wait(timeout=60)
        os.kill(os.getpid(), signal.SIGSEGV)
    _innocent_in_model.set()
    stall_dir = os.environ.get("HPC_CLASSIFY_TEST_STALL_DIR")
    stall_text = os.environ.get("HPC_CLASSIFY_TEST_STALL_TEXT")
    if (
        stall_text
        and not frame[classifiers[0].text_field].astype(str).str.contains(stall_text, regex=False).any()
    ):
        stall_dir = None
    if stall_dir:
        open(os.path.join(stall_dir, f"started-{os.getpid()}"), "w").close()
        threading.Event().wait()
    return _real_predict(classifiers, frame, *args, **kwargs)


_faulty_predict.__wrapped_original__ = _real_predict
combine.predict_together = _faulty_predict
