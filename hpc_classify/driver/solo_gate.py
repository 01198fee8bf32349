"""One worker process's gate for its task threads: tasks run side by side, except a solo task, which waits
until the tasks running in the process have finished and keeps new ones waiting until it has.

The driver runs a file solo after a worker process died while the file ran beside other tasks: one of them
killed the process, and only a run alone says which (driver/dispatch.py). A task waiting at the gate has not
begun (it tells the driver only once through), so a death while it waits is not charged to it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class SoloGate:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0  # tasks through the gate, a solo one included
        self._solo_running = False
        self._solo_waiting = 0  # solo tasks at the gate go before the tasks that come after them

    @contextlib.contextmanager
    def entered(self, *, solo: bool) -> Iterator[None]:
        with self._changed:
            if solo:
                self._solo_waiting += 1
                self._changed.wait_for(lambda: self._running == 0)
                self._solo_waiting -= 1
                self._solo_running = True
            else:
                self._changed.wait_for(lambda: not self._solo_waiting and not self._solo_running)
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._solo_running = False  # it was this task, if any: nothing runs beside a solo task
                self._changed.notify_all()


GATE = SoloGate()  # one per worker process: the tasks of all its threads pass it
