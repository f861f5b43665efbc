"""Settlements admitted, read, written to the ledger and recorded many at a time on PostgreSQL.

A 2207 needs a transaction: store the nonce, check the sign-in and the msgid, lock the
visit, read the visit, its lines and the person, write the settlement to the ledger and
record the output. One request at a time, each of those steps is a round trip that also
wakes a database process on the same cores. The batcher runs each step once for all the
settlements waiting at that moment, in one transaction on one connection. The ledger plans
and writes the group's settlements inside that transaction (``settle_in_transaction``), so
the group commits once, durably, for the nonces, the ledger rows and the outputs together.

Each request keeps its own outcome. A request that fails its checks, its claim or the
ledger's checks gets its own error, and the rest of the group goes on. Its nonce stays
stored, as on the single-request path. An error of the database itself rolls the whole
group back, ledger rows included, and its requests run again one at a time, each in a
group of its own. A request that made the group fail (a msgid that another process settled
at the same moment, say) then gets its own coded error or fails alone, and the others
settle. The callers store the nonces of the requests that failed after passing their
checks, as they do after any failure.

Outcomes are handed out after the group's COMMIT, so every response describes committed
state. A lane is a task that runs groups while requests wait, on one pooled connection.
One lane runs at first. A further lane, up to ``lanes``, opens only when
``extra_lane_backlog`` requests wait. Two groups in flight lock the same rows (the chain
head, a region's pooled fund account), so the second waits for the first's COMMIT anyway,
and each of two smaller groups pays the fixed cost of its statements. At 1,000
settlements a second, a second lane for any arrival cost PostgreSQL about a fifth more CPU
per settlement than one lane, and p99 was higher. Under a backlog, a second lane admits
and reads the next group while the first commits. With 64 clients sending as fast as they
can, the maximum sustained rate was about a tenth lower than with two lanes open all the
time (figures in ``docs/benchmarks.md``).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from adapters.server import admission as admission_checks
from adapters.server import settle_reads, state
from adapters.server.admission import Admission
from adapters.server.sqldb import Connection, PostgresDatabase
from settlement.errors import SettlementError

__all__ = ["SettleBatcher"]

logger = logging.getLogger("settlement.server")

# Turns a request's claim read into its claim, raising the request's coded errors. May run
# further reads on the group's connection, so the batcher calls it for one request at a time.
ReadClaim = Callable[[Any, Any, Connection, settle_reads.ClaimRead], Awaitable[Any]]
# Settles the group's claims through the ledger on the group's connection, inside its
# transaction. Takes (call, request, claim) triples and returns one encoded output or
# coded error per triple, in order. Errors of the database itself are raised.
Finish = Callable[[Connection, list[tuple[Any, Any, Any]]], Awaitable[list[bytes | BaseException]]]

# Database errors after which the group's requests run again one at a time (see the module's docs).
_RETRYABLE = (asyncpg.PostgresError,)


@dataclasses.dataclass
class _Waiting:
    """One settlement request in the queue: its call, decoded input, admission facts and the future its caller awaits."""

    call: Any
    req: Any
    admission: Admission
    future: asyncio.Future
    outcome: Any = None
    failed: bool = False

    def fail(self, error: BaseException) -> None:
        self.outcome, self.failed = error, True

    def reset(self) -> None:
        self.outcome, self.failed = None, False

    def deliver(self) -> None:
        if self.future.done():
            return
        if self.failed:
            self.future.set_exception(self.outcome)
        else:
            self.future.set_result(self.outcome)


class SettleBatcher:
    """Queues admitting settlements and runs them in groups of at most ``batch_max``."""

    def __init__(
        self, db: PostgresDatabase, read_claim: ReadClaim, finish: Finish, *, batch_max: int = 64, lanes: int = 2,
        # NOTE: 16 was chosen against 1 and 4 on one 2-core machine only. Another machine or
        # load may be better served by another value.
        extra_lane_backlog: int = 16,
    ) -> None:
        if batch_max < 1 or lanes < 1 or extra_lane_backlog < 1:
            raise ValueError(
                f"invalid batcher settings: batch_max, lanes and extra_lane_backlog must each be at least 1,"
                f" got {batch_max}, {lanes} and {extra_lane_backlog}"
            )
        self._db = db
        self._read_claim = read_claim
        self._finish = finish
        self._batch_max = batch_max
        self._lane_max = lanes
        self._extra_lane_backlog = extra_lane_backlog
        self._lanes = 0
        self._pending: collections.deque[_Waiting] = collections.deque()
        self._tasks: set[asyncio.Task] = set()
        self.groups_run = 0

    async def settle(self, call: Any, req: Any, admission: Admission) -> bytes | state.StoredMessage:
        """Admit, settle and record one request with whatever else is waiting; return its output or stored message."""
        waiting = _Waiting(call, req, admission, asyncio.get_running_loop().create_future())
        self._pending.append(waiting)
        if self._lanes == 0 or (self._lanes < self._lane_max and len(self._pending) >= self._extra_lane_backlog):
            self._lanes += 1
            task = asyncio.create_task(self._lane())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await waiting.future

    async def _lane(self) -> None:
        try:
            while self._pending:
                group = [self._pending.popleft() for _ in range(min(len(self._pending), self._batch_max))]
                try:
                    await self._run_isolating_database_errors(group)
                except asyncio.CancelledError:
                    # The loop is shutting down: the callers are cancelled too, instead of waiting forever.
                    for waiting in group:
                        waiting.future.cancel()
                    raise
                except Exception as error:  # noqa: BLE001 - every request of the group must get an outcome
                    logger.warning(
                        "server: settlement group failed requests=%d msgids=%s error=%s",
                        len(group), ",".join(w.call.msgid for w in group), error,
                    )
                    for waiting in group:
                        if not waiting.failed:
                            waiting.fail(error)

                for waiting in group:
                    waiting.deliver()
        finally:
            self._lanes -= 1

    async def _run_isolating_database_errors(self, group: list[_Waiting]) -> None:
        try:
            await self._run(group)
        except _RETRYABLE as error:
            logger.warning(
                "server: settlement group rolled back, running its requests one at a time requests=%d msgids=%s error=%s",
                len(group), ",".join(w.call.msgid for w in group), error,
            )
            for waiting in group:
                waiting.reset()
            for waiting in group:
                try:
                    await self._run([waiting])
                except _RETRYABLE as single_error:
                    logger.warning("server: settlement failed alone msgid=%s error=%s", waiting.call.msgid, single_error)
                    waiting.fail(single_error)

    async def _run(self, group: list[_Waiting]) -> None:
        self.groups_run += 1
        admitted = _distinct_nonces(group)
        async with self._db.group_transaction() as conn:
            outcomes = await admission_checks.admit_many(conn, [w.admission for w in admitted], [w.req.mdtrt_id for w in admitted])
            live = []
            for waiting, outcome in zip(admitted, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    waiting.fail(outcome)
                elif outcome is not None:
                    waiting.outcome = outcome
                else:
                    live.append(waiting)
            if live:
                await self._settle_live(conn, live)

    async def _settle_live(self, conn: Connection, live: list[_Waiting]) -> None:
        keys = [
            settle_reads.ClaimKey(
                w.req.mdtrt_id, w.call.code, w.req.chrg_bchno, w.req.psn_no, w.req.cert_type, w.req.cert_no, w.call.now.date()
            )
            for w in live
        ]
        reads = await settle_reads.many_visits_batches_and_persons(conn, keys)
        claimed = []
        for waiting, read in zip(live, reads, strict=True):
            # A coded error fails its own request only. Any other error may have aborted the
            # group's transaction, so it propagates and the group rolls back.
            try:
                claimed.append((waiting, await self._read_claim(waiting.call, waiting.req, conn, read)))
            except SettlementError as error:
                waiting.fail(error)

        if not claimed:
            return
        results = await self._finish(conn, [(w.call, w.req, claim) for w, claim in claimed])
        answered = []
        for (waiting, _), result in zip(claimed, results, strict=True):
            if isinstance(result, BaseException):
                waiting.fail(result)
            else:
                answered.append((waiting, result))
        if answered:
            await _record(conn, answered)


def _distinct_nonces(group: list[_Waiting]) -> list[_Waiting]:
    """Return the requests whose nonce is new within the group; a later use of a nonce is rejected as a replay."""
    seen: set[tuple[str, str]] = set()
    admitted = []
    for waiting in group:
        key = (waiting.admission.fixmedins_code, waiting.admission.nonce)
        if key in seen:
            waiting.fail(waiting.admission.nonce_reused())
        else:
            seen.add(key)
            admitted.append(waiting)
    return admitted


async def _record(conn: Connection, answered: list[tuple[_Waiting, bytes]]) -> None:
    """Record the group's outputs; a request whose msgid was recorded first by a twin gets the twin's stored message.

    The twin may be another request of the same group (only the first of a msgid is
    inserted) or of another transaction, which the insert waits for before it decides.
    """
    first: dict[tuple[str, str], _Waiting] = {}
    rows = []
    for waiting, output in answered:
        waiting.outcome = output
        key = (waiting.call.code, waiting.call.msgid)
        if key not in first:
            first[key] = waiting
            call = waiting.call
            rows.append((call.code, call.msgid, call.infno, call.digest, output.decode("utf-8"), call.stamp))
    inserted = await state.record_messages(conn, rows)
    for waiting, _ in answered:
        key = (waiting.call.code, waiting.call.msgid)
        if key in inserted and first[key] is waiting:
            continue
        stored = await state.find_message(conn, *key)
        if stored is None:
            waiting.fail(RuntimeError(f"message {waiting.call.msgid} was neither recorded nor found"))
        else:
            waiting.outcome = stored
