"""First come, first served: the queue itself, and the spawner taking its turn in it."""

from __future__ import annotations

import asyncio

import pytest

from hubside.admission import ADMISSION, Admission

from .conftest import run, running_hub
from .test_spawner import config, spawner_of


async def arrive(admission: Admission, name: str, order: list[str], release: asyncio.Event) -> None:
    async with admission.turn(name):
        order.append(name)
        await release.wait()


def test_the_first_arrivals_start_and_the_others_wait_in_their_order():
    async def main():
        admission, order, release = Admission(slots=2), [], asyncio.Event()
        tasks = []
        for name in ("a", "b", "c", "d", "e"):
            tasks.append(asyncio.create_task(arrive(admission, name, order, release)))
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        assert order == ["a", "b"]
        assert [admission.place(n) for n in "abcde"] == [0, 0, 1, 2, 3]
        release.set()
        await asyncio.gather(*tasks)
        assert order == ["a", "b", "c", "d", "e"]
        assert admission.starting == 0 and not admission.waiting

    run(main())


def test_one_who_gives_up_waiting_leaves_the_queue_and_a_handed_slot_goes_on():
    async def main():
        admission, order, release = Admission(slots=1), [], asyncio.Event()
        first = asyncio.create_task(arrive(admission, "a", order, release))
        await asyncio.sleep(0)
        quitter = asyncio.create_task(arrive(admission, "b", order, release))
        last = asyncio.create_task(arrive(admission, "c", order, release))
        await asyncio.sleep(0.01)
        quitter.cancel()
        await asyncio.sleep(0)
        assert admission.place("c") == 1
        release.set()
        await asyncio.gather(first, last)
        assert order == ["a", "c"] and admission.starting == 0
        # A slot handed to someone cancelled before they resumed is passed on, not lost.
        release.clear()
        holder = asyncio.create_task(arrive(admission, "x", order, release))
        await asyncio.sleep(0)
        handed = asyncio.create_task(arrive(admission, "y", order, release))
        after = asyncio.create_task(arrive(admission, "z", order, release))
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.sleep(0)  # x leaves: y's future is done, y has not resumed yet
        handed.cancel()
        await asyncio.gather(holder, after)
        assert order[-2:] == ["x", "z"] and admission.starting == 0

    run(main())


def test_one_name_waits_once():
    async def main():
        admission, release = Admission(slots=1), asyncio.Event()
        first = asyncio.create_task(arrive(admission, "a", [], release))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(arrive(admission, "b", [], release))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already waiting"):
            await arrive(admission, "b", [], release)
        release.set()
        await asyncio.gather(first, waiting)

    run(main())


def test_servers_on_the_hub_start_in_turn_and_the_waiting_see_their_place(helper, tmp_path):
    """Three people, one slot, a helper that takes a while: the second and third wait, told how
    many are ahead of them, and start in the order they asked."""
    helper.answer(start=[""])
    slow = tmp_path / "bin" / "sudo"
    slow.write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nsleep 0.3\nexec "$@"\n')

    async def test(hub):
        spawners = [spawner_of(hub, name) for name in ("ann", "ben", "cat")]
        starts = []
        for spawner in spawners:
            starts.append(asyncio.create_task(spawner.start()))
            await asyncio.sleep(0.01)
        events = []

        async def watch():
            async for event in spawners[2].progress():
                events.append(event["message"])

        watcher = asyncio.create_task(watch())
        await asyncio.gather(*starts)
        await watcher
        assert [call["argv"][1] for call in helper.calls] == ["ann", "ben", "cat"]
        assert events[0].startswith("Many people are starting their servers: 1 person ahead of you")
        assert "nobody ahead of you" in events[1]
        assert events[-1] == "Your turn: your server is starting"
        assert ADMISSION.starting == 0 and not ADMISSION.waiting

    running_hub(test, config(helper, start_slots=1))
