"""The driver's queue of pending files and how it forms task groups of small files."""

from __future__ import annotations

from hpc_classify.driver.grouping import MAX_FILES_PER_GROUP, FileQueue, group_budget
from hpc_classify.driver.plan import PlannedFile


def files(*sizes: int) -> list[PlannedFile]:
    return [PlannedFile(path=f"/in/f{i}", relpath=f"f{i}", size=size) for i, size in enumerate(sizes)]


def names(group: list[PlannedFile]) -> list[str]:
    return [f.relpath for f in group]


def drain(queue: FileQueue, group_bytes: int, workers: int = 1) -> list[list[str]]:
    """Every group, with the budget of one round of submissions (as the dispatcher computes it)."""
    budget = group_budget(group_bytes, queue.queued_bytes, workers)
    groups = []
    while queue:
        groups.append(names(queue.take(budget)))
    return groups


def test_small_files_share_a_task_up_to_the_budget_in_queue_order():
    queue = FileQueue(files(500, 300, 300, 200, 100, 100))  # largest first, as pending_files gives them
    assert drain(queue, group_bytes=600) == [["f0"], ["f1", "f2"], ["f3", "f4", "f5"]]
    assert queue.queued_bytes == 0


def test_a_file_at_or_over_the_budget_goes_alone():
    queue = FileQueue(files(1000, 600, 10, 10))
    assert drain(queue, group_bytes=600) == [["f0"], ["f1"], ["f2", "f3"]]


def test_group_bytes_zero_sends_one_file_per_task_even_empty_ones():
    queue = FileQueue(files(0, 0, 0))
    assert drain(queue, group_bytes=0) == [["f0"], ["f1"], ["f2"]]


def test_a_group_takes_no_more_than_an_even_share_of_the_queue_per_worker():
    # 8 small files, 4 workers: 4 tasks of 2 files, not one task holding everything while 3 workers idle.
    queue = FileQueue(files(*[10] * 8))
    assert [len(g) for g in drain(queue, group_bytes=10**6, workers=4)] == [2, 2, 2, 2]
    assert group_budget(10**6, 80, 4) == 20
    assert group_budget(50, 80, 1) == 50
    assert group_budget(0, 80, 1) == 0


def test_a_group_holds_at_most_max_files():
    queue = FileQueue(files(*[1] * (MAX_FILES_PER_GROUP + 5)))
    assert [len(g) for g in drain(queue, group_bytes=10**9)] == [MAX_FILES_PER_GROUP, 5]


def test_a_retried_file_comes_first_and_alone():
    queue = FileQueue(files(10, 10, 10))
    first = queue.take(100)
    assert names(first) == ["f0", "f1", "f2"]
    queue.retry_first(first[1])
    queue.retry_first(first[2])
    assert queue.queued_bytes == 20
    assert drain(queue, group_bytes=100) == [["f2"], ["f1"]]


def test_fresh_files_after_a_retried_one_still_group_with_each_other():
    queue = FileQueue(files(10, 10, 10))
    failed = queue.take(10)  # f0 alone
    queue.retry_first(failed[0])
    assert drain(queue, group_bytes=100) == [["f0"], ["f1", "f2"]]


def test_a_group_ends_before_a_file_that_goes_in_pieces():
    # f2 is small, but was started in pieces by an earlier run (a larger --piece-bytes now): it must be
    # expanded into its remaining pieces when it reaches the head, not classified whole inside a group.
    queue = FileQueue(files(100, 100, 100, 100))
    in_pieces = {"f2"}
    assert names(queue.take(1000, alone=lambda f: f.relpath in in_pieces)) == ["f0", "f1"]
    assert names(queue.take(0)) == ["f2"]
    assert names(queue.take(1000, alone=lambda f: f.relpath in in_pieces)) == ["f3"]
