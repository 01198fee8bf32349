"""The worker's solo gate (driver/solo_gate.py): tasks side by side, a solo task alone."""

from __future__ import annotations

import threading

from hpc_classify.driver.solo_gate import SoloGate

WAIT = 10.0  # seconds: generous on a busy machine; every wait below ends early when the gate is right


def _task(gate: SoloGate, solo: bool, inside: list[str], name: str, release: threading.Event):
    def run() -> None:
        with gate.entered(solo=solo):
            inside.append(f"+{name}")
            release.wait(WAIT)
            inside.append(f"-{name}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _until(condition, timeout: float = WAIT) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        done.wait(0.01)
    return condition()


def test_tasks_run_side_by_side_and_a_solo_task_alone() -> None:
    gate, inside = SoloGate(), []
    first, second, solo_done, late_done = (threading.Event() for _ in range(4))
    a = _task(gate, False, inside, "a", first)
    b = _task(gate, False, inside, "b", second)
    assert _until(lambda: inside == ["+a", "+b"] or inside == ["+b", "+a"])  # together

    s = _task(gate, True, inside, "solo", solo_done)
    assert _until(lambda: gate._solo_waiting == 1)  # noqa: SLF001 - at the gate, behind a and b
    late = _task(gate, False, inside, "late", late_done)  # came after the solo task: waits for it
    first.set()
    a.join(WAIT)
    assert "+solo" not in inside  # b still runs
    second.set()
    b.join(WAIT)
    assert _until(lambda: "+solo" in inside)
    assert "+late" not in inside  # nothing beside the solo task
    solo_done.set()
    s.join(WAIT)
    assert _until(lambda: "+late" in inside)
    late_done.set()
    late.join(WAIT)
    assert inside.index("-b") < inside.index("+solo") < inside.index("-solo") < inside.index("+late")
