"""``settlement serve``: run the national-interface server (uvicorn with httptools on uvloop)."""

from __future__ import annotations

import argparse
import datetime
import logging

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
    parser.add_argument("--graceful-timeout", type=float, default=30.0, help="停止时等待未完成请求的秒数 seconds to wait for in-flight requests on stop (default 30)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from adapters.server.services import ServerConfig

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
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_server(config, host=args.host, port=args.port, graceful_timeout=args.graceful_timeout)
    return 0


def run_server(config, *, host: str, port: int, graceful_timeout: float = 30.0) -> None:
    """Serve until SIGINT/SIGTERM: then stop accepting, finish in-flight requests, close the pools."""
    import uvicorn

    from adapters.server.app import SettlementApp
    from adapters.server.wiring import build_services, close_services
    from adapters.services.http import mount_services

    async def startup():
        return await build_services(config)

    # The card, employment, pension and self-service routes share the server's services.
    app = mount_services(SettlementApp(startup=startup, shutdown=close_services))
    server_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=graceful_timeout,
    )
    uvicorn.Server(server_config).run()


