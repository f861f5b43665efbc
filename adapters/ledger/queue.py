"""Group commit: callers queue operations, committer tasks write them in batches.

A caller's future is resolved only after the batch holding its operation has committed
(or failed), so an outcome always describes durable state. With several committers,
batches overlap (one commits while the next reads and computes). A batch waits for every
earlier batch still in flight that shares a person with it, so one person's operations
are applied in the order they were queued.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.ledger.batch import Batch, Operation, SameAs

__all__ = ["GroupCommitQueue", "resolve_outcomes"]

logger = logging.getLogger("settlement.ledger")


def resolve_outcomes(outcomes: list[Any]) -> list[Any]:
    """Replace each SameAs with the outcome it points to (always an earlier operation)."""
    resolved: list[Any] = []
    for outcome in outcomes:
        while isinstance(outcome, SameAs):
            outcome = resolved[outcome.index]
        resolved.append(outcome)
    return resolved


class GroupCommitQueue:
    """Runs queued operations in batches of at most ``batch_max`` through ``run_batch``.

    ``run_batch`` takes the operations of one batch and returns one outcome per operation:
    a result, a ``SameAs`` or an exception instance to raise in that caller.
    """

    def __init__(
        self,
        run_batch: Callable[[list[Operation]], Awaitable[list[Any]]],
        *,
        batch_max: int,
        committers: int,
    ) -> None:
        if batch_max < 1 or committers < 1:
            raise ValueError(f"batch_max and committers must be at least 1, got {batch_max} and {committers}")
        self._run_batch = run_batch
        self._batch_max = batch_max
        self._committer_count = committers
        self._pending: collections.deque[tuple[Operation, asyncio.Future[Any]]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: list[tuple[frozenset[str], asyncio.Event]] = []
        self._closed = False
        self.batches_committed = 0
        self.operations_committed = 0

    async def submit(self, op: Operation) -> Any:
        """Queue one operation and return its outcome once its batch has committed."""
        if self._closed:
            raise RuntimeError("the ledger store is closed")
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._committer()) for _ in range(self._committer_count)]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((op, future))
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Finish the queued operations, then stop the committers."""
        self._closed = True
        self._wakeup.set()
        if self._tasks:
            await asyncio.gather(*self._tasks)
        self._tasks = []

    async def _committer(self) -> None:
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue

            claimed = [self._pending.popleft() for _ in range(min(len(self._pending), self._batch_max))]
            operations = [op for op, _ in claimed]
            persons = frozenset(Batch(operations).persons())
            earlier = [done for others, done in self._in_flight if others & persons]
            done = asyncio.Event()
            entry = (persons, done)
            self._in_flight.append(entry)
            try:
                for event in earlier:
                    await event.wait()
                outcomes = await self._run_batch(operations)
            except Exception as error:  # noqa: BLE001 - every caller of the batch must get an outcome
                logger.exception("ledger: batch: failed operations=%d", len(operations))
                outcomes = [error] * len(operations)
            finally:
                done.set()
                self._in_flight.remove(entry)

            self._deliver(claimed, outcomes)

    def _deliver(self, claimed: list[tuple[Operation, asyncio.Future[Any]]], outcomes: list[Any]) -> None:
        resolved = resolve_outcomes(outcomes)
        self.batches_committed += 1
        for (_, future), outcome in zip(claimed, resolved, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                self.operations_committed += 1
                future.set_result(outcome)
