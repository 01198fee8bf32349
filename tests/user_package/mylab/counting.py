"""A classifier that counts the documents it is given: the piece tests measure how many documents went
through the model over a stopped run and its rerun (each call appends "<worker> <rows>" to a log). While a
file `hold` exists in the count directory, each call waits for it to go: a test can stop a run with pieces
certainly left, whatever the speed of the machine."""

from __future__ import annotations

import os
import time

from mylab.toxicity import ToxicityClassifier

HOLD_TIMEOUT_S = 600.0


class CountingToxicityClassifier(ToxicityClassifier):
    def __init__(self, model_dir: str, count_dir: str, **kwargs):
        super().__init__(model_dir, **kwargs)
        self.count_dir = count_dir

    def texts(self, frame, source):
        hold, deadline = os.path.join(self.count_dir, "hold"), time.monotonic() + HOLD_TIMEOUT_S
        while os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.05)  # the test removes it once the stop it sent has reached the driver
        texts = super().texts(frame, source)
        worker = ""
        try:
            from distributed import get_worker

            worker = str(get_worker().name)
        except (ImportError, ValueError):
            pass
        # Counted before the model runs: a document whose batch is cut short by a stop counts too.
        with open(os.path.join(self.count_dir, f"{os.getpid()}.log"), "a", encoding="utf-8") as log:
            log.write(f"{worker} {len(texts)}\n")
        return texts


def counted(count_dir: str) -> tuple[int, set[str]]:
    """(documents given to the model, workers that classified some) over every log in `count_dir`."""
    total, workers = 0, set()
    for name in os.listdir(count_dir):
        with open(os.path.join(count_dir, name), encoding="utf-8") as log:
            for line in log:
                worker, rows = line.rsplit(" ", 1)
                total += int(rows)
                if int(rows):
                    workers.add(worker)
    return total, workers
