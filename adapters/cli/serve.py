"""``settlement serve``: run the national-interface server (uvicorn with httptools on uvloop)."""

from __future__ import annotations

import argparse
import datetime
import logging
import sys

from settlement.paths import bundled_rules_dir

__all__ = ["register", "run_server", "DEFAULT_LEDGER"]

DEFAULT_LEDGER = "sqlite://settlement-ledger.sqlite3"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="启动国家医保接口服务 (start the national-interface server)",
        description="启动国家医保接口服务：一个 POST 端点，按 infno 分发。 Start the national-interface server.",
    )
    rules = bundled_rules_dir()
    parser.add_argument("--host", default="127.0.0.1", help="监听地址 listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="监听端口 listen port (default 8080)")
    parser.add_argument("--ledger", default=DEFAULT_LEDGER, help=f"账本地址 ledger DSN: postgresql://... or sqlite://FILE (default {DEFAULT_LEDGER})")
    parser.add_argument("--rules", default=str(rules), help="规则目录 rules directory (default: the bundled rules)")
    parser.add_argument("--persons", default=str(rules / "persons" / "demo-persons.json"), help="启动时加载的人员文件 persons file (.json or .csv) loaded at start (default: demo persons); '' for none")
    parser.add_argument("--institutions", default=str(rules / "persons" / "demo-institutions.json"), help="启动时登记的机构文件 institutions file loaded at start (default: demo institutions); '' for none")
    parser.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024, help="请求体上限（字节） maximum request body in bytes (default 4 MiB)")
    parser.add_argument("--max-lines", type=int, default=1000, help="单次明细条数上限 maximum fee lines per request (default 1000)")
    parser.add_argument("--clock-start", default=None, help="服务时钟起点 start the engine clock at 'yyyy-MM-dd HH:mm:ss' (for rules of past years)")
    parser.add_argument("--test-clock", action="store_true", help="允许请求头 x-settlement-clock 设定时钟（仅测试） let the x-settlement-clock header set the clock (tests only)")
    parser.add_argument(
        "--workers", type=_worker_count, default=1,
        help="服务进程数，共用一个端口；大于 1 时需要 PostgreSQL 账本 number of server processes sharing the port (default 1; more than 1 needs a PostgreSQL ledger)",
    )
    parser.add_argument("--graceful-timeout", type=float, default=30.0, help="停止时等待未完成请求的秒数 seconds to wait for in-flight requests on stop (default 30)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"), help="日志级别 log level (default info)")
    parser.set_defaults(handler=_handle)


def _worker_count(text: str) -> int:
    from adapters.server.workers import MAX_WORKER_SLOTS

    # Each live worker needs its own slot in the inf_refmsgid serial.
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKER_SLOTS:
        raise argparse.ArgumentTypeError(f"应为 1 到 {MAX_WORKER_SLOTS} 的整数 must be an integer from 1 to {MAX_WORKER_SLOTS}: {text!r}")
    return int(text)


# SQLite has one write lock per file, so more processes only queue for it, and a writer that
# waits past the busy timeout fails with "database is locked".
SQLITE_WORKERS_REJECTED = (
    "--workers 大于 1 时需要 PostgreSQL 账本（--ledger postgresql://...）：SQLite 同一时刻只允许一个写入者，"
    "多个进程只会排队等待，等待超时的请求会失败。\n"
    "--workers above 1 needs a PostgreSQL ledger (--ledger postgresql://...): SQLite allows one writer at a time, "
    "so more processes only queue for its lock, and requests that wait past the timeout fail."
)


def _handle(args: argparse.Namespace) -> int:
    from adapters.server.services import ServerConfig
    from adapters.server.sqldb import is_postgres_dsn

    if args.workers > 1 and not is_postgres_dsn(args.ledger):
        print(SQLITE_WORKERS_REJECTED, file=sys.stderr)
        return 2
    busy = _port_in_use(args.host, args.port)
    if busy is not None:
        print(f"无法监听 {args.host}:{args.port}：{busy}。请用 --port 换一个端口，或先停止占用它的进程。\n"
              f"cannot listen on {args.host}:{args.port}: {busy}. Choose another --port or stop the process that holds it.",
              file=sys.stderr)
        return 2

    clock_start = datetime.datetime.strptime(args.clock_start, "%Y-%m-%d %H:%M:%S") if args.clock_start else None
    config = ServerConfig(
        ledger_dsn=args.ledger,
        rules_dir=args.rules,
        persons_file=args.persons or None,
        institutions_file=args.institutions or None,
        max_body_bytes=args.max_body_bytes,
        max_lines=args.max_lines,
        clock_start=clock_start,
        test_clock=args.test_clock,
    )
    from adapters.server.workers import LOG_FORMAT, run_workers

    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    if args.workers > 1:
        return run_workers(config, host=args.host, port=args.port, workers=args.workers, graceful_timeout=args.graceful_timeout, log_level=args.log_level)
    run_server(config, host=args.host, port=args.port, graceful_timeout=args.graceful_timeout)
    return 0


def _port_in_use(host: str, port: int) -> str | None:
    """Return why ``host:port`` cannot be listened on, or None when it can.

    Checked before the ledger is migrated and the seed files are loaded, so a busy port
    fails fast and writes nothing. Another process could still take the port in between;
    uvicorn then reports it.
    """
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as error:
        return str(error)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # The same option uvicorn sets, so a port in TIME_WAIT after a restart is not reported busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            return error.strerror or str(error)
    return None


def run_server(config, *, host: str, port: int, graceful_timeout: float = 30.0) -> None:
    """Serve until SIGINT/SIGTERM: then stop accepting, finish in-flight requests, close the pools."""
    from adapters.server.workers import run_single

    run_single(config, host=host, port=port, graceful_timeout=graceful_timeout)
