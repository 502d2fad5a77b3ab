"""The fork-server ("zygote"): imports the app's third-party modules once (the preload list),
then forks one worker per request from the runner and reports every worker's exit."""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import traceback
from typing import Any, NoReturn

from .frames import MAX_CONTROL_FDS
from .worker import run_worker


def _preload(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException:  # a module that fails here is simply not warmed
            continue


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name[3:].lower()
        except ValueError:
            name = str(sig)
        if name == "kill":
            name = "killed"
        return f"signal: {name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def run_zygote(control: socket.socket, preload: list[str]) -> NoReturn:
    """Serve the runner's spawn requests until the control socket closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _run_as_batch()
    _preload(preload)
    children: set[int] = set()
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ, "control")
    selector.register(wake_r, selectors.EVENT_READ, "signal")
    buffer = b""

    def send(message: dict[str, Any]) -> None:
        try:
            control.sendall(json.dumps(message).encode() + b"\n")
        except OSError:  # the runner is gone: stop, taking the workers along
            raise SystemExit(0) from None

    try:
        send({"op": "hello", "pid": os.getpid()})
        while True:
            for key, _ in selector.select():
                if key.data == "signal":
                    os.read(wake_r, 512)
                    _reap(children, send)
                    continue
                try:
                    data, fds, _flags, _addr = socket.recv_fds(control, 1 << 20, MAX_CONTROL_FDS)
                except OSError:
                    data, fds = b"", []
                if not data:
                    raise SystemExit(0)
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    message = json.loads(line)
                    if message["op"] == "preload":
                        _preload(message["modules"])
                    elif message["op"] == "spawn":
                        pid = _fork_worker(message["spec"], fds, control, wake_r, wake_w)
                        fds = []
                        children.add(pid)
                        send({"op": "spawned", "worker": message["worker"], "pid": pid})
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _reap(children: set[int], send: Any) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        send({"op": "exited", "pid": pid, "status": _describe_status(status)})


def _run_as_batch() -> None:
    """The host and the workers it forks (they inherit it) run under SCHED_BATCH (Linux).

    Writing an invocation to a worker wakes it, and a woken normal process may preempt the
    one that woke it: pylive's event loop, with more answers and requests to handle in the
    same turn, would stop for every worker it feeds. A batch process does not preempt on
    waking; it runs on an idle core, or once the loop waits. A handler sees no difference
    but ``os.sched_getscheduler``; a single request is as fast, and under concurrent load
    pylive serves about an eighth more requests per second (docs/local-development.md).
    """
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def _fork_worker(
    spec: dict[str, Any], fds: list[int], control: socket.socket, wake_r: int, wake_w: int
) -> int:
    worker_fd, out_fd = fds
    # Everything the host holds moves out of the collector's reach: a worker's collections
    # then never write to those objects' pages, which stay shared with the host instead of
    # being copied into every worker (its memory is what the worker itself makes).
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            control.close()
            os.close(wake_r)
            os.close(wake_w)
            run_worker(spec, socket.socket(fileno=worker_fd), out_fd)
        except BaseException:
            traceback.print_exc()
            os._exit(70)
    os.close(worker_fd)
    os.close(out_fd)
    return pid
