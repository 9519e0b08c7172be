"""One simulated clock for runs of the function that overlap: two deliveries of one event, say.

Lambda runs two deliveries of an event in two execution environments at once. Here each is a thread, and only
one runs at a time: the one whose next wake-up is earliest (the earlier started first, on a tie). Time moves only
when the running one sleeps, so the runs interleave as they would in Lambda and the figures are exact.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable


class TakingTurns:
    """A fake clock (`time`, `sleep`) shared by tasks that `run` together, each on its own thread, one at a time."""

    def __init__(self, start: float) -> None:
        self.now = start
        self._lock = threading.Lock()
        self._waking: list[tuple[float, int, threading.Event]] = []  # (when, order, the sleeper's wake-up)
        self._order = itertools.count()
        self._idle = threading.Event()
        self._errors: list[BaseException] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Called by the running task only: it waits its turn, and the earliest other task runs meanwhile."""
        wake = threading.Event()
        self._wait_from(self.now + max(0.0, seconds), wake)
        self._pass_on()
        wake.wait()

    def run(self, *tasks: Callable[[], None]) -> None:
        """Run the tasks from now until each has returned (or raise the first error one raised)."""
        self._idle.clear()
        for task in tasks:
            go = threading.Event()
            self._wait_from(self.now, go)
            threading.Thread(target=self._body, args=(task, go), daemon=True).start()
        self._pass_on()
        self._idle.wait()
        if self._errors:
            raise self._errors[0]

    def _body(self, task: Callable[[], None], go: threading.Event) -> None:
        go.wait()
        try:
            task()
        except BaseException as error:  # noqa: BLE001 (handed to `run`, which raises it in the caller's thread)
            self._errors.append(error)
        finally:
            self._pass_on()

    def _wait_from(self, when: float, wake: threading.Event) -> None:
        with self._lock:
            heapq.heappush(self._waking, (when, next(self._order), wake))

    def _pass_on(self) -> None:
        """Wake the earliest sleeper (moving the clock to its time); with none left, every task has returned."""
        with self._lock:
            if not self._waking:
                self._idle.set()
                return
            when, _, wake = heapq.heappop(self._waking)
            self.now = max(self.now, when)
        wake.set()
