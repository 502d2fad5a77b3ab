"""Shared by the benchmark scripts: a temporary app, a running `pylive dev --local`, HTTP
clients, process-tree memory, statistics and the JSON report.

Every script prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the process-tree helpers the tests use too

from proctree import alive, children, descendants  # noqa: E402

PYTHON = sys.executable
HOST = "127.0.0.1"

READY_PATTERN = re.compile(
    r"serving \d+ function\(s\) on (http://\S+) [^(]*\(ready in ([\d.]+) s\)"
)

STDLIB_HANDLER = '''"""A trivial stdlib handler (benchmark)."""

import json
import time

MARKER = "{marker}"


def handler(event, context):
    params = event.get("queryStringParameters") or {{}}
    if "sleep" in params:
        time.sleep(float(params["sleep"]))
    return {{
        "statusCode": 200,
        "headers": {{"content-type": "application/json"}},
        "body": json.dumps({{"message": "Hello, world!", "marker": MARKER}}),
    }}
'''

BOTO3_HANDLER = '''"""The same handler, importing boto3 at module level (benchmark)."""

import json

import boto3

MARKER = "{marker}"


def handler(event, context):
    return {{
        "statusCode": 200,
        "headers": {{"content-type": "application/json"}},
        "body": json.dumps(
            {{"message": "Hello, world!", "marker": MARKER, "boto3": boto3.__version__}}
        ),
    }}
'''

STACKS = """from aws_cdk import Stack
from constructs import Construct

from pylive.constructs import Api


class AppStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Api(self, "Api", routes={routes!r})


def stacks(app: Construct) -> None:
    AppStack(app, "App")
"""

HELLO_ROUTE = {"GET /": "functions/hello.handler"}
BOTH_ROUTES = {"GET /": "functions/hello.handler", "GET /aws": "functions/aws.handler"}


# -- output --------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_total_mb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        mem_total_mb = round(int(first.split()[1]) / 1024)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "mem_total_mb": mem_total_mb,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": {
            name: _version(name)
            for name in ("pylive", "uvicorn", "httptools", "uvloop", "watchfiles", "boto3")
        },
    }


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=2), flush=True)


def main(run: Callable[[], dict[str, Any]]) -> None:
    """Run a benchmark: SIGTERM behaves like Ctrl-C, so every ``finally`` cleans up."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        result = run()
    except KeyboardInterrupt:
        log("interrupted; processes cleaned up")
        sys.exit(130)
    emit(result)


# -- statistics ----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float], digits: int = 3) -> dict[str, float | int]:
    return {
        "n": len(values),
        "p50": round(statistics.median(values), digits),
        "p90": round(percentile(values, 90), digits),
        "p99": round(percentile(values, 99), digits),
        "max": round(max(values), digits),
        "min": round(min(values), digits),
        "mean": round(statistics.fmean(values), digits),
    }


def median(values: Iterable[float], digits: int = 3) -> float:
    return round(statistics.median(list(values)), digits)


def verdict(value: float, target: float, *, higher_is_better: bool = False) -> dict[str, Any]:
    met = value >= target if higher_is_better else value <= target
    return {"value": value, "target": target, "met": met}


# -- the app -------------------------------------------------------------------------------


def handler_source(kind: str, marker: str) -> str:
    template = STDLIB_HANDLER if kind == "stdlib" else BOTO3_HANDLER
    return template.format(marker=marker)


def create_app(
    directory: Path, routes: dict[str, str], *, with_boto3: bool = False, synthesize: bool = True
) -> Path:
    """A `pylive init` app whose routes are ``routes``; functions/hello.py is the stdlib
    handler and, with ``with_boto3``, functions/aws.py imports boto3."""
    app = directory / "app"
    subprocess.run(
        [PYTHON, "-m", "pylive", "init", str(app), "--no-env"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (app / "stacks.py").write_text(STACKS.format(routes=routes))
    (app / "functions" / "hello.py").write_text(handler_source("stdlib", "v0"))
    if with_boto3:
        (app / "functions" / "aws.py").write_text(handler_source("boto3", "v0"))
    if synthesize:
        # Start and stop once, so that later starts reuse the synthesized app.
        with DevServer(app) as server:
            server.wait_ready()
    return app


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def kill_all(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class DevServer:
    """`pylive dev --local` in an app directory, its stdout in a file (pylive prints a line
    per request: a pipe nobody reads would block it, and a terminal would slow it down).

    Started in its own session; on exit the runner is stopped with SIGTERM and anything of
    its process tree that is left (the worker host has a session of its own) gets SIGKILL.
    """

    def __init__(self, app: Path, *, port: int = 0, extra_args: Sequence[str] = ()) -> None:
        self.app = app
        self.port = port
        self.log_path = app.parent / f"dev-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "pylive", "dev", "--local", "--port", str(port), *extra_args],
            cwd=app,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = ""
        self.reported_ready_s: float | None = None
        self._known: set[int] = set()

    def __enter__(self) -> DevServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds from the process start to the ready line; sets ``url``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := READY_PATTERN.search(self.output()):
                elapsed = time.perf_counter() - self.started
                self.url = found.group(1)
                self.reported_ready_s = float(found.group(2))
                self.remember_tree()
                return elapsed
            if self.proc.poll() is not None:
                raise RuntimeError(f"pylive dev exited ({self.proc.returncode}):\n{self.output()}")
            time.sleep(0.002)
        raise TimeoutError(f"pylive dev not ready in {timeout} s:\n{self.output()}")

    @property
    def host_port(self) -> tuple[str, int]:
        hostport = self.url.removeprefix("http://")
        host, port = hostport.rsplit(":", 1)
        return host, int(port)

    def remember_tree(self) -> list[int]:
        tree = descendants(self.proc.pid)
        self._known.update(tree)
        return tree

    def stop(self, timeout: float = 15.0) -> None:
        with contextlib.suppress(Exception):
            self.remember_tree()
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(5)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            leftover = [pid for pid in self._known if alive(pid)]
            kill_all(leftover)
            self._log.close()


class Background:
    """Some other process of ours (e.g. a bare uvicorn), stopped on exit."""

    def __init__(self, args: Sequence[str], **kwargs: Any) -> None:
        self.proc = subprocess.Popen(args, start_new_session=True, **kwargs)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


# -- HTTP ----------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection (http.client sets TCP_NODELAY); reconnects on
    connection errors."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, bytes]:
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request("GET", path)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def wait_http_ok(
    host: str,
    port: int,
    path: str = "/",
    timeout: float = 60.0,
    stop: threading.Event | None = None,
) -> float:
    """perf_counter() when ``path`` first answered 200 (polling every few ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        try:
            conn = http.client.HTTPConnection(
                host, port, timeout=max(deadline - time.monotonic(), 0.1)
            )
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status == 200:
                return time.perf_counter()
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.005)
    raise TimeoutError(f"{host}:{port}{path} did not answer 200 within {timeout} s")


def sequential_latency(
    host: str, port: int, path: str, *, requests: int, warmup: int
) -> dict[str, Any]:
    """Latency of one client sending requests back to back on one keep-alive connection."""
    client = Client(host, port)
    try:
        for _ in range(warmup):
            status, _ = client.get(path)
            assert status == 200, status
        samples: list[float] = []
        errors = 0
        for _ in range(requests):
            t0 = time.perf_counter()
            status, _ = client.get(path)
            samples.append((time.perf_counter() - t0) * 1e6)
            errors += status != 200
    finally:
        client.close()
    return {"unit": "us", **summary(samples, 1), "non_200": errors}


# -- wrk -----------------------------------------------------------------------------------

_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit("wrk is not installed: install it (e.g. `apt-get install -y wrk`) and re-run")
    return path


def _duration_us(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not found:
        return math.nan
    return round(float(found.group(1)) * _UNITS[found.group(2)], 1)


def run_wrk(
    url: str, *, threads: int = 2, connections: int = 16, seconds: int = 5
) -> dict[str, Any]:
    wrk = require_wrk()
    args = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    latency = {
        f"p{q}_us": _duration_us(m.group(1))
        for q in (50, 90, 99)
        if (m := re.search(rf"^\s+{q}%\s+(\S+)", out, re.M))
    }
    if rps is None:
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    return {
        "requests_per_s": float(rps.group(1)),
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else None,
        **latency,
    }


# -- memory --------------------------------------------------------------------------------


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _pss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def tree_memory(root: int, roles: dict[int, str] | None = None) -> dict[str, Any]:
    """RSS (double counts the pages forked children share) and PSS (shares them out) of
    ``root`` and every descendant, in MB."""
    pids = [root, *descendants(root)]
    processes = []
    for pid in pids:
        rss = _status_kb(pid, "VmRSS")
        if rss is None:
            continue
        processes.append(
            {
                "pid": pid,
                "role": (roles or {}).get(pid, ""),
                "rss_mb": round(rss / 1024, 1),
                "pss_mb": None if (pss := _pss_kb(pid)) is None else round(pss / 1024, 1),
                "cmd": cmdline(pid)[:100],
            }
        )
    pss_values = [p["pss_mb"] for p in processes]
    return {
        "processes": len(processes),
        "rss_mb": round(sum(p["rss_mb"] for p in processes), 1),
        "pss_mb": None if None in pss_values else round(sum(pss_values), 1),
        "by_process": processes,
    }


def pylive_roles(runner: int) -> dict[int, str]:
    """runner -> worker host (zygote, runs sandbox/main.py) -> workers (its children); a
    worker host that runs the relay's stub (``--relay``) and its workers are told apart."""
    roles = {runner: "runner (HTTP + pool)"}
    for pid in children(runner):
        if "sandbox/main.py" in cmdline(pid):
            stub = is_stub_host(pid)
            roles[pid] = "stub worker host" if stub else "worker host (zygote)"
            for worker in children(pid):
                roles[worker] = "stub worker" if stub else "worker"
        else:
            roles[pid] = "other"
    return roles


def is_stub_host(pid: int) -> bool:
    """Whether a worker host runs the stub: its working directory is the stub's code."""
    # Imported here: a child of `stub_cpu.py --compare` imports pylive from another checkout.
    from pylive.cdk.shipped import handlers_dir

    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")) == handlers_dir().resolve()
    except OSError:
        return False


def cpu_groups(runner: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by pylive's own process, by the stub workers
    (with their worker hosts) and by the function workers (with theirs). Processes that
    already exited are not counted."""
    ticks = os.sysconf("SC_CLK_TCK")
    groups = {"pylive": _cpu_ticks(runner) / ticks, "stubs": 0.0, "functions": 0.0}
    for host in children(runner):
        if "sandbox/main.py" not in cmdline(host):
            continue
        group = "stubs" if is_stub_host(host) else "functions"
        for pid in (host, *descendants(host)):
            groups[group] += _cpu_ticks(pid) / ticks
    return groups


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def count_workers(runner: int) -> int:
    return sum(1 for role in pylive_roles(runner).values() if role == "worker")


def timed_command(args: Sequence[str], runs: int, *, cwd: Path | None = None) -> dict[str, Any]:
    """Wall time of a fresh process, in ms."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, timeout=60, cwd=cwd)
        samples.append((time.perf_counter() - t0) * 1000)
    return {"unit": "ms", **summary(samples, 1)}


# -- a bare uvicorn: the HTTP floor --------------------------------------------------------

RAW_BODY = b'{"message": "Hello, world!", "marker": "v0"}'


async def raw_asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor: answers every request with the stdlib handler's body, nothing else."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(RAW_BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": RAW_BODY})


def serve_raw_asgi(port: int) -> None:
    """uvicorn with the settings `pylive dev` uses: httptools, uvloop, no access log."""
    import uvicorn

    config = uvicorn.Config(
        raw_asgi_app,
        host=HOST,
        port=port,
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,
        server_header=False,
    )
    uvicorn.Server(config).run()


def start_raw_asgi(port: int) -> Background:
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        f"import common; common.serve_raw_asgi({port})"
    )
    return Background([PYTHON, "-c", code], stdin=subprocess.DEVNULL)


# -- uvicorn in front of forked worker processes: the floor of a process per invocation ----

_FRAME = "!II"  # header length, body length; as pylive's worker frames


def _floor_worker(sock: socket.socket) -> None:
    """A forked worker: read an invocation (a JSON header and a JSON event), answer with the
    stdlib handler's result, as a worker that does nothing else would."""
    import struct

    frame = struct.Struct(_FRAME)
    reader = sock.makefile("rb", buffering=1 << 16)
    while True:
        prefix = reader.read(frame.size)
        if len(prefix) < frame.size:
            os._exit(0)
        header_len, body_len = frame.unpack(prefix)
        header = json.loads(reader.read(header_len))
        json.loads(reader.read(body_len))
        body = json.dumps({"message": "Hello, world!", "marker": "v0"})
        result = json.dumps(
            {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": body}
        ).encode()
        answer = json.dumps({"t": "result", "id": header["id"]}).encode()
        sock.sendall(frame.pack(len(answer), len(result)) + answer + result)


def serve_pool_asgi(port: int) -> None:
    """uvicorn (the settings of :func:`serve_raw_asgi`) that hands each request, as a small
    JSON event, to an idle forked worker over a socket pair and answers with the worker's
    result: one worker per concurrent request, created on demand, as pylive's pool does.
    No routing, records, timeouts or logs: the least a process per invocation costs. The
    workers run under SCHED_BATCH, as pylive's do (see pylive/sandbox/fork_server.py)."""
    import asyncio
    import struct

    import orjson
    import uvicorn

    frame = struct.Struct(_FRAME)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def worker() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if idle:
            return idle.pop()
        ours, theirs = socket.socketpair()
        if os.fork() == 0:
            ours.close()
            with contextlib.suppress(AttributeError, OSError):  # as pylive's workers run
                os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
            _floor_worker(theirs)
        theirs.close()
        return await asyncio.open_unix_connection(sock=ours)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        event = orjson.dumps(
            {
                "version": "2.0",
                "rawPath": scope["path"],
                "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            }
        )
        header = orjson.dumps({"t": "invoke", "id": "request"})
        reader, writer = await worker()
        writer.write(frame.pack(len(header), len(event)) + header + event)
        header_len, body_len = frame.unpack(await reader.readexactly(frame.size))
        data = await reader.readexactly(header_len + body_len)
        idle.append((reader, writer))
        result = orjson.loads(data[header_len:])
        body = result["body"].encode()
        await send(
            {
                "type": "http.response.start",
                "status": result["statusCode"],
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,
        server_header=False,
    )
    uvicorn.Server(config).run()


def start_pool_asgi(port: int) -> Background:
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        f"import common; common.serve_pool_asgi({port})"
    )
    return Background([PYTHON, "-c", code], stdin=subprocess.DEVNULL)


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its living descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(_cpu_ticks(pid) for pid in (root, *descendants(root))) / ticks
