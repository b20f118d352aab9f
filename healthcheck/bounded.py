"""Calls bounded in time, and a bounded pool of them (threads, no other effect)."""

import queue
import threading
import time
from collections.abc import Sequence
from typing import Callable, Optional


def call_with_timeout(function: Callable[[], object], limit: float):
    """Run `function` on a daemon thread; return its result, or raise TimeoutError after `limit`.

    Socket timeouts bound each read, not a whole exchange: a peer that trickles bytes would
    otherwise hold the run past its deadline.
    """
    box: dict[str, object] = {}

    def target():
        try:
            box["result"] = function()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(max(limit, 0))
    if worker.is_alive():
        raise TimeoutError(f"no answer within {max(limit, 0):.3g}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("result")


def run_bounded(tasks: Sequence[Callable[[], object]], workers: int,
                budget_end: float) -> list[Optional[object]]:
    """Run tasks on at most `workers` threads; return results in order, None where time ran out."""
    results: list[Optional[object]] = [None] * len(tasks)
    pending: queue.Queue[int] = queue.Queue()
    for index in range(len(tasks)):
        pending.put(index)
    finished: queue.Queue[tuple[int, object, Optional[BaseException]]] = queue.Queue()

    def work():
        while time.monotonic() < budget_end:
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            try:
                finished.put((index, tasks[index](), None))
            except BaseException as exc:  # noqa: BLE001 - a bug: re-raised in the main thread
                finished.put((index, None, exc))

    # Daemon threads: a call stuck past the deadline must not keep the process alive.
    for number in range(min(workers, len(tasks))):
        threading.Thread(target=work, name=f"revive-{number}", daemon=True).start()
    for _ in range(len(tasks)):
        try:
            index, result, bug = finished.get(timeout=max(budget_end - time.monotonic(), 0))
        except queue.Empty:
            break
        if bug is not None:
            raise bug
        results[index] = result
    return results
