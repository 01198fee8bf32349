"""Whom a worker process's death is charged to (the driver's side; the worker's is driver/solo_gate.py).

Each task tells the driver when it begins and in which worker process (worker_tasks.announce_start). When a
process dies (Dask fails every task assigned to it):
- a task that had not begun is not to blame: requeued, not counted;
- a task that ran beside others in it may not be to blame: any of them may have killed it, and only a run
  alone tells. It is retried solo in its worker, not counted;
- a task that ran alone is to blame: its attempt counts, and so does the death.
A file that was in a death once runs solo from then on. Excuses are bounded per task (EXCUSES), in case a
"began" event was lost with its worker.
"""

from __future__ import annotations

import logging

from hpc_classify.driver.failures import worker_died

logger = logging.getLogger(__name__)

EXCUSES = 8  # uncounted requeues per task and kind of excuse


class WorkerDeaths:
    def __init__(self) -> None:
        self.deaths: dict[str, int] = {}  # charged attempts that ended with the worker process dying
        self._began_in: dict[str, str] = {}  # task in flight that began -> its worker's address
        self._died_in: dict[str, set[str]] = {}  # worker address -> tasks that began there and died with it
        self._not_begun_excuses: dict[str, int] = {}
        self._beside_excuses: dict[str, int] = {}
        self._solo: set[str] = set()  # files (or piece jobs) to run alone in their worker process

    def began(self, key: str, worker: str) -> None:
        self._began_in[key] = worker
        self._died_in.pop(worker, None)  # alive at this address again (a restart with a fixed port)

    def ended(self, key: str, error: BaseException | None) -> tuple[bool, int]:
        """Task `key` is done: whether it had begun, and if its worker process died running it, how many
        other tasks had begun in that process (they ran beside it, or died with it)."""
        worker = self._began_in.pop(key, None)
        if worker is None or error is None or not worker_died(error):
            return worker is not None, 0
        died = self._died_in.setdefault(worker, set())
        died.add(key)
        running = {other for other, address in self._began_in.items() if address == worker}
        return True, len((died | running) - {key})

    def excused(self, key: str, error: BaseException, began: bool, beside: int) -> bool:
        """Whether this failure of `key` is requeued without counting (see the module's docstring)."""
        if not worker_died(error):
            return False
        if not began and self._not_begun_excuses.get(key, 0) < EXCUSES:
            self._not_begun_excuses[key] = self._not_begun_excuses.get(key, 0) + 1
            logger.info("%s was waiting on a worker that died before it began: requeued, not counted", key)
            return True
        self._solo.add(key)  # from now on its worker process runs it alone: a death is its own
        if not beside or self._beside_excuses.get(key, 0) >= EXCUSES:
            return False
        self._beside_excuses[key] = self._beside_excuses.get(key, 0) + 1
        logger.warning(
            "%s: the worker process running it died while %d other task(s) ran beside it: "
            "retried alone in its worker, not counted",
            key,
            beside,
        )
        return True

    def charge(self, key: str, error: BaseException) -> int:
        """Count a failed attempt of `key` that was not excused; returns the deaths charged to it."""
        if worker_died(error):
            self.deaths[key] = self.deaths.get(key, 0) + 1
        return self.deaths.get(key, 0)

    def solo(self, key: str) -> bool:
        return key in self._solo
