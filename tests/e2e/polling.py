"""Asking a target something in the background while a test changes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests


class KeepAsking:
    """Calls ask() every `every` seconds while the block runs, and keeps each outcome, with the
    time it was asked: its answer, or the request error it raised."""

    def __init__(self, ask: Callable[[], object], every: float = 0.05):
        self.ask, self.every = ask, every
        self.samples: list[tuple[float, object, str | None]] = []  # (asked at, answer, error)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            asked = time.monotonic()
            try:
                self.samples.append((asked, self.ask(), None))
            except requests.RequestException as error:
                self.samples.append((asked, None, repr(error)))
            time.sleep(self.every)

    @property
    def answers(self) -> list:
        return [answer for _, answer, error in self.samples if error is None]

    def answers_since(self, moment: float) -> list:
        """The answers to what was asked at or after moment: an answer on its way before then may
        come from what the test has since stopped."""
        return [answer for asked, answer, error in self.samples if error is None and asked >= moment]

    @property
    def failures(self) -> list[str]:
        return [error for _, _, error in self.samples if error is not None]

    def longest_outage(self, healthy: Callable[[object], bool]) -> float:
        """The longest run, in seconds, of outcomes that were errors or answers healthy() refused."""
        longest, since = 0.0, None
        for at, answer, error in self.samples:
            if error is None and healthy(answer):
                since = None
            else:
                since = at if since is None else since
                longest = max(longest, at - since)
        return longest

    def __enter__(self) -> KeepAsking:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
