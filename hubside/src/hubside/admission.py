"""First come, first served when a class arrives at once.

At most `slots` servers start on the hub server at the same time (starting one is mostly CPU:
fifty at once share it and everyone waits nearly as long as the last). The others wait in the
order they asked, and their progress page shows their place: the first people work within
seconds, nobody gets an error for arriving with the others.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from contextlib import asynccontextmanager


class Admission:
    """Turns to start a server, in arrival order (one waiting turn per user name)."""

    def __init__(self, slots: int = 1):
        self.slots = slots
        self.starting = 0
        self.waiting: OrderedDict[str, asyncio.Future] = OrderedDict()

    def place(self, name: str) -> int:
        """1 for the next to start, 2 for the one after, ...; 0 when not waiting."""
        for place, waiting in enumerate(self.waiting, 1):
            if waiting == name:
                return place
        return 0

    @asynccontextmanager
    async def turn(self, name: str):
        """Wait for a free slot (behind everyone who came first), hold it while the block runs."""
        if self.starting < self.slots and not self.waiting:
            self.starting += 1
        else:
            if name in self.waiting:
                raise RuntimeError(f"{name} is already waiting to start a server")
            future = asyncio.get_running_loop().create_future()
            self.waiting[name] = future
            try:
                await future
            except asyncio.CancelledError:
                # Given up while waiting (stopped, timed out): a slot handed over goes on.
                if self.waiting.pop(name, None) is None:
                    self._release()
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        """The slot goes to the first who waits, or is free."""
        while self.waiting:
            _, future = self.waiting.popitem(last=False)
            if not future.done():
                future.set_result(None)
                return
        self.starting -= 1


# The hub's one queue: every ServerSpawner takes its turn here (slots from the configuration).
ADMISSION = Admission()
