"""Build the server's ASGI application, and run it in one process or in N worker processes.

With ``settlement serve --workers N`` the parent process migrates the ledger and loads the
seed files once, binds the listening socket, and hands it to uvicorn's ``Multiprocess``
supervisor, which spawns N workers that accept on the same socket. Visit state, locks,
nonces, sign-ins and message records are in the ledger database, so any worker can serve
any step of any visit.

The supervisor restarts a worker that dies. On SIGINT or SIGTERM it sends SIGTERM to every
worker and waits for them. Each worker stops accepting, finishes its in-flight requests
(up to the graceful timeout) and closes its pools.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import gc
import logging
import multiprocessing
import os
from typing import Any

from adapters.server.services import ServerConfig

__all__ = ["MAX_WORKER_SLOTS", "WorkerApp", "build_app", "freeze_startup_heap", "run_single", "run_workers"]

logger = logging.getLogger("settlement.server")

# Worker slots are counted modulo this, because the slot is the first two digits of the serial in inf_refmsgid.
MAX_WORKER_SLOTS = 100

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def build_app(config: ServerConfig, *, prepared: bool = False, serial_slot: int = 0) -> Any:
    """Return the national-interface application with the services routes, whose services are built at lifespan startup."""
    from adapters.server.app import SettlementApp
    from adapters.server.wiring import build_services, close_services
    from adapters.services.http import mount_services

    async def startup():
        services = await build_services(config, prepared=prepared)
        services.serial_slot = serial_slot
        freeze_startup_heap()
        return services

    # The card, employment, pension and self-service routes share the server's services.
    return mount_services(SettlementApp(startup=startup, shutdown=close_services))


def freeze_startup_heap() -> None:
    """Move the objects startup built out of the cycle collector's reach for the rest of the process.

    Modules, rules, catalogues and pools live as long as the process, yet every full
    collection scanned them again. With 1,000 settlements a second that pause was about
    18 ms, and every request in flight waited through it. Frozen, a full collection took
    about 2 ms (both measured here with gc.callbacks). The collection first keeps startup's
    own garbage out of the frozen set.
    """
    gc.collect()
    gc.freeze()


def _uvicorn_config(app: Any, *, host: str, port: int, graceful_timeout: float, workers: int = 1) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        # Nothing reads the client's address, so the forwarded-for rewrite of every request is skipped.
        proxy_headers=False,
        log_config=None,
        timeout_graceful_shutdown=graceful_timeout,
    )


def run_single(config: ServerConfig, *, host: str, port: int, graceful_timeout: float) -> None:
    """Serve in this process until SIGINT/SIGTERM."""
    import uvicorn

    app = build_app(config)
    try:
        uvicorn.Server(_uvicorn_config(app, host=host, port=port, graceful_timeout=graceful_timeout)).run()
    except KeyboardInterrupt:
        # uvicorn raises the SIGINT again once it has shut down in order, so that a caller
        # may stop too. The stop is complete here, as with --workers, so it ends normally.
        pass


class WorkerApp:
    """The application of one worker process, built inside the worker on its first ASGI call.

    uvicorn pickles the application into every worker it spawns, so this object holds only
    picklable settings: the server configuration, the shared slot counter, the log level and
    the moment the parent started.
    """

    def __init__(self, config: ServerConfig, *, slots: Any, log_level: str, started: datetime.datetime) -> None:
        self.config = config
        self.log_level = log_level
        self._slots = slots
        self._started = started
        self._app: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_app": None}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = self._build()
        await self._app(scope, receive, send)

    def _build(self) -> Any:
        # A spawned worker is a fresh interpreter, so the parent's logging setup does not carry over.
        logging.basicConfig(level=self.log_level.upper(), format=LOG_FORMAT)
        with self._slots.get_lock():
            slot = self._slots.value % MAX_WORKER_SLOTS
            self._slots.value += 1
        config = self.config
        if config.clock_start is not None:
            # Every worker's clock reads clock_start at the moment the parent started, as one process would.
            config = dataclasses.replace(config, clock_start=config.clock_start + (datetime.datetime.now() - self._started))
        logger.info("server: worker starting pid=%d slot=%d", os.getpid(), slot)
        return build_app(config, prepared=True, serial_slot=slot)


def run_workers(config: ServerConfig, *, host: str, port: int, workers: int, graceful_timeout: float, log_level: str) -> int:
    """Prepare the ledger once, then serve with ``workers`` processes on one socket until SIGINT/SIGTERM.

    Return the exit status: 0 after a stop by signal, or uvicorn's startup-failure status
    when the ledger cannot be prepared.
    """
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from adapters.server.wiring import prepare_ledger

    started = datetime.datetime.now()
    try:
        asyncio.run(prepare_ledger(config))
    except Exception:
        # The same log line and exit status as a single-process server whose startup fails.
        logger.exception("server: startup failed")
        return STARTUP_FAILURE
    # NOTE: slots repeat after 100 worker starts. Two live workers share a slot (and may issue
    # the same inf_refmsgid in the same second) only if one has outlived 99 restarts of others.
    slots = multiprocessing.get_context("spawn").Value("i", 0)
    app = WorkerApp(config, slots=slots, log_level=log_level, started=started)
    server_config = _uvicorn_config(app, host=host, port=port, graceful_timeout=graceful_timeout, workers=workers)
    sock = server_config.bind_socket()
    logger.info("server: starting workers=%d pid=%d", workers, os.getpid())
    Multiprocess(server_config, sockets=[sock]).run()
    return 0
