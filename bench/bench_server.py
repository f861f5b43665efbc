"""End-to-end 2207 settlements through the national-interface server, measured from a separate process.

Scenarios (each bounded by a request count and ``--seconds``, at most 60 s):

* ``http-ceiling``: ``GET /health`` on the same server stack (uvicorn, httptools, uvloop,
  the settlement ASGI app), closed loop: what the HTTP layer alone can serve.
* ``settle-<ledger>-<rate>/s``: signed 2207 requests of 20-line claims sent open loop at a
  fixed rate; latency is measured from each request's scheduled send time, so queueing
  behind a slow response counts against the server.
* ``settle-<ledger>-max``: the same requests, closed loop with ``--concurrency``
  connections: sustained durable settlements per second, with the CPU time that the
  server, PostgreSQL and the whole machine spent per settlement (``CpuMeter``).
* ``trivial-uvicorn`` / ``trivial-granian``: a minimal ASGI app answering a fixed JSON
  body, under each server, closed loop, to compare the two HTTP servers alone.

The server runs as a child process (``settlement serve``, one worker unless ``--workers``
asks for more on PostgreSQL); this script is the load generator. Before each settle scenario it registers visits (2201) and uploads their
20 lines (2204), untimed. PostgreSQL commits with ``synchronous_commit = on``; SQLite uses
``synchronous = FULL``. Claims are spread over ``--persons`` persons so that few wait for
the ledger's per-person lock.

    python bench/bench_server.py --seconds 10 --out /tmp/server-table.md

``--out`` writes only the table, so keep it away from the narrative in
``bench/results/server.md``. Set SETTLEMENT_BENCH_PG_DSN to use another PostgreSQL than
the local test database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.util
import json
import os
import platform
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from settlement import signing  # noqa: E402

PG_DSN = os.environ.get("SETTLEMENT_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
MAX_SECONDS = 60
INSTITUTION = {"fixmedins_code": "H99000000009", "fixmedins_name": "压测医院（虚构）", "kind": "hospital", "hosp_lv": "level2",
               "admdvs": "110000", "secret": "bench-secret-not-for-production"}
# Twenty lines per claim from the bundled sample catalogue: services, class A and B drugs, one class C item.
CLAIM_LINES = [("T-SVC-0002", "30.00", "1"), ("T-SVC-0003", "25.00", "1"), ("T-DRG-0002", "18.50", "2"), ("T-DRG-0001", "12.80", "3"),
               ("T-DRG-0008", "42.00", "1"), ("T-DRG-0004", "68.00", "1"), ("T-SVC-0007", "25.00", "1"), ("T-DRG-0007", "16.90", "2"),
               ("T-DRG-0202", "8.00", "4"), ("T-SVC-0009", "60.00", "1")] * 2
PATH = "/fsi/api/callService"


# ---------------------------------------------------------------------------
# Trivial ASGI app for the HTTP-server comparison


async def trivial_app(scope, receive, send):
    """Respond to every HTTP request with a fixed JSON body, after reading the request body."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"infcode":0,"output":{}}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------
# HTTP load over raw keep-alive connections


_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


def http_request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> bytes:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(_LENGTH.search(head).group(1))
    return await reader.readexactly(length)


class Outcome:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.failures = 0
        self.unsent = 0
        self.first_failure = b""
        self.started = 0.0
        self.finished = 0.0

    def record(self, latency: float, body: bytes, ok_marker: bytes) -> None:
        self.latencies.append(latency)
        if ok_marker not in body:
            self.failures += 1
            self.first_failure = self.first_failure or body[:300]

    def summary(self) -> dict:
        done = len(self.latencies)
        ordered = sorted(self.latencies)
        elapsed = self.finished - self.started

        def pct(p: float) -> float:
            return ordered[min(done - 1, int(p * done))] * 1000 if done else float("nan")

        return {"requests": done, "failures": self.failures, "unsent": self.unsent, "seconds": round(elapsed, 2), "per_second": round(done / elapsed) if elapsed else 0,
                "p50_ms": round(pct(0.50), 2), "p99_ms": round(pct(0.99), 2), "max_ms": round(ordered[-1] * 1000, 2) if done else float("nan")}


async def closed_loop(port: int, payloads: list[bytes], concurrency: int, seconds: float, ok_marker: bytes) -> Outcome:
    """Send ``payloads`` over ``concurrency`` connections, each waiting for its response, until done or ``seconds`` pass."""
    outcome = Outcome()
    cursor = iter(payloads)
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for payload in cursor:
                if time.perf_counter() > deadline:
                    return
                started = time.perf_counter()
                body = await _exchange(reader, writer, payload)
                outcome.record(time.perf_counter() - started, body, ok_marker)
        finally:
            writer.close()

    outcome.started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    outcome.finished = time.perf_counter()
    return outcome


async def open_loop(port: int, payloads: list[bytes], rate: float, seconds: float, ok_marker: bytes, connections: int = 64) -> Outcome:
    """Send request i at start + i / rate on the next free connection; latency counts from the scheduled time.

    Requests still queued ``seconds`` after the start are dropped and counted in ``unsent``.
    """
    outcome = Outcome()
    count = min(len(payloads), int(rate * seconds))
    queue: asyncio.Queue = asyncio.Queue()
    deadline = time.perf_counter() + 0.2 + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if time.perf_counter() > deadline:
                    outcome.unsent += 1
                    continue
                scheduled, payload = item
                body = await _exchange(reader, writer, payload)
                outcome.record(time.perf_counter() - scheduled, body, ok_marker)
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(0.2)
    outcome.started = start = time.perf_counter()
    for index in range(count):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((scheduled, payloads[index]))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    outcome.finished = time.perf_counter()
    return outcome


# ---------------------------------------------------------------------------
# CPU accounting from /proc (Linux)


def _process_table() -> dict[int, tuple[str, int, int]]:
    """Return pid -> (command name, parent pid, user plus system clock ticks) of every process now."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry)] = (name, int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def _machine_ticks() -> tuple[int, int]:
    """Return (all, idle plus iowait) clock ticks of every CPU since boot."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values), values[3] + values[4]


class CpuMeter:
    """CPU time used during a scenario, in ms per answered request: by the server's process tree,
    by every process named ``postgres`` (other clients of the same cluster included) and by the
    whole machine (busy time of all CPUs). Processes that exit during the scenario are not counted."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.available = os.path.exists("/proc/stat")

    def start(self) -> None:
        if self.available:
            self._before, self._machine_before = _process_table(), _machine_ticks()

    def stop(self, requests: int) -> dict:
        if not self.available or not requests:
            return {}
        after, machine_after = _process_table(), _machine_ticks()
        tree = {self.server_pid}
        for pid, (_, parent, _) in sorted(after.items()):
            if parent in tree:
                tree.add(pid)
        used = {pid: ticks - self._before.get(pid, ("", 0, 0))[2] for pid, (_, _, ticks) in after.items()}
        per_request = 1000 / os.sysconf("SC_CLK_TCK") / requests
        busy = (machine_after[0] - self._machine_before[0]) - (machine_after[1] - self._machine_before[1])
        return {
            "server_cpu_ms": round(sum(used[pid] for pid in tree if pid in used) * per_request, 2),
            "postgres_cpu_ms": round(sum(used[pid] for pid, (name, _, _) in after.items() if name == "postgres") * per_request, 2),
            "machine_cpu_ms": round(busy * per_request, 2),
        }


# ---------------------------------------------------------------------------
# Signed national-interface requests


class Signer:
    def __init__(self) -> None:
        self.secret = INSTITUTION["secret"].encode()
        self.sign_no = ""
        self.serial = 0

    def msgid(self) -> str:
        self.serial += 1
        return f"{INSTITUTION['fixmedins_code']}{uuid.uuid4().int % 10**18:018d}"[:30]

    def request(self, infno: str, node: dict) -> bytes:
        envelope = {
            "infno": infno, "msgid": self.msgid(), "mdtrtarea_admvs": "110000", "insuplc_admdvs": "110000", "recer_sys_code": "YBXT",
            "infver": "V1.0", "opter_type": "1", "opter": "B1", "opter_name": "压测", "inf_time": f"{datetime.datetime.now():%Y-%m-%d %H:%M:%S}",
            "fixmedins_code": INSTITUTION["fixmedins_code"], "fixmedins_name": INSTITUTION["fixmedins_name"], "sign_no": self.sign_no, "input": node,
        }
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        headers = signing.signed_headers(INSTITUTION["fixmedins_code"], self.secret, body, int(time.time()), secrets.token_hex(16))
        headers["content-type"] = "application/json;charset=UTF-8"
        return http_request("POST", PATH, body, headers)


def _persons(count: int) -> list[dict]:
    return [
        {"psn_no": f"PSN-BENCH-{n:05d}", "certno": f"9900001980{n:08d}",
         "psn_name": "测试甲", "gend": "1", "brdy": "1980-01-01", "insutype": "310", "psn_type": "1101", "insuplc_admdvs": "110000",
         "acct_balc": "100000.00", "cards": [{"card_no": f"BENCHCARD{n:05d}"}]}
        for n in range(count)
    ]


async def prepare_claims(port: int, signer: Signer, persons: int, claims: int) -> list[bytes]:
    """Register ``claims`` visits and upload their lines (untimed); return the 2207 requests."""
    today = f"{datetime.datetime.now():%Y-%m-%d} 00:00:01"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = json.loads(await _exchange(reader, writer, signer.request("9001", {"signIn": {"opter_no": "B1", "ip": "127.0.0.1"}})))
    writer.close()
    signer.sign_no = answer["output"]["signinoutb"]["sign_no"]

    registrations = []
    for index in range(claims):
        number = index % persons
        registrations.append(signer.request("2201", {"data": {
            "psn_no": f"PSN-BENCH-{number:05d}", "insutype": "310", "begntime": today, "mdtrt_cert_type": "03",
            "mdtrt_cert_no": f"BENCHCARD{number:05d}", "ipt_otp_no": f"B{index}", "atddr_no": "D1", "dr_name": "医生", "dept_code": "A03",
            "dept_name": "内科", "caty": "A03"}}))
    visits = await _collect(port, registrations)
    total = sum(Decimal(price) * Decimal(quantity) for _, price, quantity in CLAIM_LINES)

    uploads, settles = [], []
    for index, answer in enumerate(visits):
        number = index % persons
        mdtrt_id = answer["output"]["data"]["mdtrt_id"]
        lines = [{"feedetl_sn": f"L{k:02d}", "mdtrt_id": mdtrt_id, "psn_no": f"PSN-BENCH-{number:05d}", "chrg_bchno": "B1", "rx_circ_flag": "0",
                  "fee_ocur_time": today, "med_list_codg": code, "medins_list_codg": code, "pric": price, "cnt": quantity,
                  "det_item_fee_sumamt": f"{Decimal(price) * Decimal(quantity):.2f}", "bilg_dept_codg": "A03", "bilg_dept_name": "内科",
                  "bilg_dr_codg": "D1", "bilg_dr_name": "医生"} for k, (code, price, quantity) in enumerate(CLAIM_LINES)]
        uploads.append(signer.request("2204", {"feedetail": lines}))
        settles.append(signer.request("2207", {"data": {
            "psn_no": f"PSN-BENCH-{number:05d}", "mdtrt_cert_type": "03", "mdtrt_cert_no": f"BENCHCARD{number:05d}", "med_type": "11",
            "medfee_sumamt": f"{total:.2f}", "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "insutype": "310", "acct_used_flag": "1"}}))
    await _collect(port, uploads)
    return settles


async def _collect(port: int, payloads: list[bytes], concurrency: int = 32) -> list[dict]:
    answers: list[dict | None] = [None] * len(payloads)
    cursor = iter(enumerate(payloads))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for index, payload in cursor:
                answer = json.loads(await _exchange(reader, writer, payload))
                if answer.get("infcode") != 0:
                    raise RuntimeError(f"setup request failed: {answer.get('err_msg')}")
                answers[index] = answer
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answers


# ---------------------------------------------------------------------------
# Servers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited:\n" + log.read_text())
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start:\n" + log.read_text())


@contextlib.contextmanager
def child(command: list[str], port: int, log: Path):
    with log.open("w") as handle:
        process = subprocess.Popen(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
        try:
            _wait(port, process, log)
            yield process
        except Exception:
            # The log lives in a temporary directory, so show its end before it is removed.
            print(f"--- last lines of {log.name}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def ledger(kind: str, work: Path):
    if kind == "sqlite":
        yield f"sqlite:///{work / 'bench-ledger.sqlite3'}"
        return
    schema = f"bench_server_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_DSN}?search_path={schema}"
    finally:
        asyncio.run(run(f"DROP SCHEMA {schema} CASCADE"))


@contextlib.contextmanager
def settlement_server(dsn: str, work: Path, persons: int, workers: int = 1):
    (work / "persons.json").write_text(json.dumps({"persons": _persons(persons)}, ensure_ascii=False))
    (work / "institutions.json").write_text(json.dumps({"institutions": [INSTITUTION]}, ensure_ascii=False))
    port = _free_port()
    command = [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), "--ledger", dsn, "--log-level", "warning",
               "--persons", str(work / "persons.json"), "--institutions", str(work / "institutions.json"), "--workers", str(workers)]
    with child(command, port, work / "server.log") as process:
        yield port, process.pid


# ---------------------------------------------------------------------------
# Scenarios


def run_all(args: argparse.Namespace) -> list[tuple[str, dict]]:
    seconds = min(args.seconds, MAX_SECONDS)
    rows: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        for kind in args.ledgers:
            # SQLite has one writer, so `settlement serve` runs it in one process only.
            workers = args.workers if kind == "postgres" else 1
            label = kind if workers == 1 else f"{kind}, {workers} workers"
            with ledger(kind, work) as dsn, settlement_server(dsn, work, args.persons, workers) as (port, server_pid):
                health = [http_request("GET", "/health")] * args.ceiling_requests
                outcome = asyncio.run(closed_loop(port, health, args.concurrency, seconds, b'"ok"'))
                rows.append((f"http-ceiling ({label} server, GET /health)", outcome.summary()))

                signer = Signer()
                for rate in args.rates:
                    count = min(args.open_claims, int(rate * seconds))
                    payloads = asyncio.run(prepare_claims(port, signer, args.persons, count))
                    outcome = asyncio.run(open_loop(port, payloads, rate, seconds, b'"infcode":0'))
                    rows.append((f"settle-{kind}-{rate:g}/s (open loop, {count} claims{'' if workers == 1 else f', {workers} workers'})", outcome.summary()))
                    _report_failure(outcome)

                payloads = asyncio.run(prepare_claims(port, signer, args.persons, args.max_claims))
                meter = CpuMeter(server_pid)
                meter.start()
                outcome = asyncio.run(closed_loop(port, payloads, args.concurrency, seconds, b'"infcode":0'))
                summary = outcome.summary() | meter.stop(len(outcome.latencies))
                rows.append((f"settle-{kind}-max ({args.concurrency} connections{'' if workers == 1 else f', {workers} workers'})", summary))
                _report_failure(outcome)

        trivial = [http_request("POST", PATH, b"{}", {"content-type": "application/json"})] * args.ceiling_requests
        for name, command in (
            ("uvicorn", ["-m", "uvicorn", "bench.bench_server:trivial_app", "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]),
            ("granian", ["-m", "granian", "--interface", "asgi", "--loop", "uvloop", "--workers", "1", "--runtime-threads", "1", "--no-access-log", "--log-level", "warning", "bench.bench_server:trivial_app"]),
        ):
            if args.no_trivial:
                continue
            if importlib.util.find_spec(name) is None:
                print(f"  trivial-{name} skipped: the {name} package is not installed", file=sys.stderr)
                continue
            port = _free_port()
            with child([sys.executable, *command, "--port", str(port)], port, work / f"{name}.log"):
                outcome = asyncio.run(closed_loop(port, trivial, args.concurrency, seconds, b'"infcode":0'))
            rows.append((f"trivial-{name} (POST, fixed JSON)", outcome.summary()))
    return rows


def _report_failure(outcome: Outcome) -> None:
    if outcome.failures:
        print(f"  {outcome.failures} requests failed; first response: {outcome.first_failure!r}", file=sys.stderr)


def _cpu_cell(summary: dict) -> str:
    if "server_cpu_ms" not in summary:
        return ""
    return f"{summary['server_cpu_ms']} / {summary['postgres_cpu_ms']} / {summary['machine_cpu_ms']}"


def markdown(rows: list[tuple[str, dict]], args: argparse.Namespace) -> str:
    head = (
        "| scenario | answered | failed | dropped | seconds | per second | p50 ms | p99 ms | max ms | CPU ms per request: server / postgres / machine |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    body = "".join(
        f"| {name} | {r['requests']} | {r['failures']} | {r['unsent']} | {r['seconds']} | {r['per_second']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {_cpu_cell(r)} |\n"
        for name, r in rows
    )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"
    return f"Machine: {machine}. Command: `python bench/bench_server.py {' '.join(sys.argv[1:])}`\n\n{head}{body}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help=f"time bound of each scenario in seconds (at most {MAX_SECONDS})")
    parser.add_argument("--rates", type=float, nargs="+", default=[50.0, 1000.0], help="open-loop settlements per second (default 50 1000)")
    parser.add_argument("--open-claims", type=int, default=1000, help="most claims prepared for one open-loop run (default 1000)")
    parser.add_argument("--max-claims", type=int, default=1500, help="claims prepared for the closed-loop run (default 20000)")
    parser.add_argument("--concurrency", type=int, default=64, help="connections of the closed-loop runs (default 64)")
    parser.add_argument("--persons", type=int, default=2000, help="persons the claims are spread over (default 2000)")
    parser.add_argument("--ceiling-requests", type=int, default=200000, help="request bound of the HTTP-only runs (default 200000)")
    parser.add_argument("--workers", type=int, default=1, help="server processes of the PostgreSQL runs (`settlement serve --workers`, default 1)")
    parser.add_argument("--no-trivial", action="store_true", help="skip the trivial-app runs under uvicorn and granian")
    parser.add_argument("--ledgers", nargs="+", default=["postgres", "sqlite"], choices=("postgres", "sqlite"))
    parser.add_argument("--out", default=None, help="also write the Markdown table to this file")
    args = parser.parse_args()

    table = markdown(run_all(args), args)
    print(table)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
