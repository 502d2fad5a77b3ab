"""The process that runs user code: a fork-server ("zygote") and the workers it forks.

This file runs on the *app's* interpreter (its venv), which need not have pylive installed,
so it uses the standard library only and is started by path::

    python /path/to/worker_main.py <control-fd> [<preload-module> ...]

The zygote imports the app's third-party modules once (the preload list), then forks one
worker per request from the runner. A worker imports its handler once, then serves
invocations one at a time, faithful to the Lambda Python runtime (awslambdaric): the same
context object, result marshalling and error payloads.

Wire format between runner and worker (see ``pack_frame``): a frame is
``>II`` (header length, body length), a JSON header, then the raw body bytes. The body
carries the event or the result untouched, so large payloads are not re-encoded.
"""

from __future__ import annotations

import contextlib
import decimal
import importlib
import importlib.machinery
import json
import logging
import math
import os
import re
import resource
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
import types
from typing import Any, NoReturn

FRAME_PREFIX = struct.Struct(">II")
MAX_CONTROL_FDS = 2

# errorType values of the Lambda Python runtime (awslambdaric's FaultException).
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"


def pack_frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return FRAME_PREFIX.pack(len(encoded), len(body)) + encoded + body


# --------------------------------------------------------------------------------------
# Lambda context, as awslambdaric builds it


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]
    cognito_identity_id: str | None
    cognito_identity_pool_id: str | None

    def __repr__(self) -> str:
        return (
            f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}])"
        )


class Client:
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]


class ClientContext:
    __slots__ = ["custom", "env", "client"]


def _obj_from_dict(cls: type, values: dict[str, Any] | None) -> Any:
    if values is None:
        return None
    obj = cls()
    for name in cls.__slots__:  # type: ignore[attr-defined]
        setattr(obj, name, values.get(name))
    return obj


class LambdaContext:
    """The ``context`` argument: attribute for attribute what the Lambda runtime passes."""

    def __init__(
        self,
        invoke_id: str,
        client_context: dict[str, Any] | None,
        cognito_identity: dict[str, Any] | None,
        epoch_deadline_time_in_ms: int,
        invoked_function_arn: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        self.aws_request_id = invoke_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self._w3c_fields = _extract_w3c(client_context)
        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)
        self.identity = _obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self) -> int:
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def w3c(self) -> dict[str, str]:
        return dict(self._w3c_fields)

    def log(self, msg: object) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}])"
        )


def _extract_w3c(client_context: dict[str, Any] | None) -> dict[str, str]:
    if not isinstance(client_context, dict) or "w3c" not in client_context:
        return {}
    raw = client_context.pop("w3c")
    if not isinstance(raw, dict):
        return {}
    return {
        k: v for k in ("traceparent", "tracestate", "baggage") if isinstance(v := raw.get(k), str)
    }


# --------------------------------------------------------------------------------------
# Marshalling and errors


class _Fault(Exception):
    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


_DECIMAL_MARK = "\x00pylive-decimal:"
_DECIMAL_RE = re.compile(r'"\\u0000pylive-decimal:([^"\\]+)"')


class _Encoder(json.JSONEncoder):
    """The standard encoder, plus Decimal written as its exact digits (as simplejson does
    for the Lambda runtime): a marked string, unquoted after encoding."""

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            if o.is_nan():
                return math.nan
            return _DECIMAL_MARK + str(o)
        return super().default(o)

    def encode(self, o: Any) -> str:
        text = super().encode(o)
        return _DECIMAL_RE.sub(r"\1", text) if "pylive-decimal:" in text else text


_ENCODER = _Encoder(ensure_ascii=False, allow_nan=True, separators=(", ", ": "))
_ENCODER_ASCII = _Encoder(ensure_ascii=True, allow_nan=True, separators=(", ", ": "))


def marshal(result: Any) -> tuple[bytes, str]:
    """A handler's return value as Lambda sends it: raw bytes, or JSON."""
    if isinstance(result, bytes):
        return result, "application/unknown"
    encoder = _ENCODER if _unicode_runtime() else _ENCODER_ASCII
    try:
        return encoder.encode(result).encode("utf-8"), "application/json"
    except Exception as exc:
        raise _Fault(MARSHAL_ERROR, f"Unable to marshal response: {exc}") from None


def _unicode_runtime() -> bool:
    # awslambdaric writes non-ASCII characters as-is from python3.12 on, escaped before.
    return os.environ.get("AWS_EXECUTION_ENV", "") not in (
        "AWS_Lambda_python3.9",
        "AWS_Lambda_python3.10",
        "AWS_Lambda_python3.11",
    )


def make_error(message: str, error_type: str, trace: list[str] | None, request_id: str) -> bytes:
    payload = {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id,
        "stackTrace": trace or [],
    }
    encoder = _ENCODER if _unicode_runtime() else _ENCODER_ASCII
    return encoder.encode(payload).encode("utf-8")


def _user_trace(tb: Any) -> list[str]:
    """``stackTrace`` as the Lambda runtime writes it: frames as plain tuples (so no caret
    lines), starting at the first frame that is not the runtime's own."""
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for index, frame in enumerate(frames):
        if frame[0] != __file__:
            frames = frames[index:]
            break
    return traceback.format_list(frames)  # type: ignore[arg-type]


def load_handler(handler: str) -> Any:
    """Import ``path/module.func`` the way the Lambda runtime does, raising ``_Fault``."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault(MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {exc}") from None
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise _Fault(
                BUILT_IN_MODULE_CONFLICT,
                f"Cannot use built-in module {modname} as a handler module",
            )
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as exc:
        raise _Fault(IMPORT_MODULE_ERROR, f"Unable to import module '{modname}': {exc}") from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise _Fault(
            USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{modname}': {exc}", trace
        ) from None
    try:
        return getattr(module, fname)
    except AttributeError:
        raise _Fault(
            HANDLER_NOT_FOUND, f"Handler '{fname}' missing on module '{modname}'"
        ) from None


def _log_error(error: bytes) -> None:
    """Show an error on the terminal the way Lambda logs it, readable for a person."""
    data = json.loads(error)
    lines = [f"[ERROR] {data['errorType']}: {data['errorMessage']}"]
    if data["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in data["stackTrace"])
    sys.stderr.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------
# Worker


class _Channel:
    """Blocking frame I/O on the worker's socket to the runner."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb", buffering=1 << 16)

    def read(self) -> tuple[dict[str, Any], bytes] | None:
        prefix = self.file.read(FRAME_PREFIX.size)
        if len(prefix) < FRAME_PREFIX.size:
            return None
        header_len, body_len = FRAME_PREFIX.unpack(prefix)
        header = json.loads(self.file.read(header_len))
        body = self.file.read(body_len) if body_len else b""
        return header, body

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        self.sock.sendall(pack_frame(header, body))


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


_REQUEST_ID = _RequestIdFilter()


def _setup_logging() -> None:
    """The root logger handler the Lambda runtime installs: level, format, request id."""
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.terminator = ""
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(_REQUEST_ID)
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging.getLevelNamesMapping():
        root.setLevel(level)


def _packages_used(module_names: list[str]) -> list[str]:
    """Top-level packages that the given modules refer to from their globals (a module they
    imported, or a class or function defined in one), and the packages they belong to.

    The worker host pre-imports the app's third-party modules, so an import the app still
    makes of one never shows among the new modules; this is how the runner learns that the
    app still uses it (and which pre-imports it may forget)."""
    used: set[str] = set()
    for name in module_names:
        module = sys.modules.get(name)
        if module is None:
            continue
        used.add(name.partition(".")[0])
        for value in list(vars(module).values()):
            try:
                owner = value.__name__ if isinstance(value, types.ModuleType) else None
                if owner is None:
                    owner = getattr(value, "__module__", None)
            except Exception:  # a lazy proxy may raise on any attribute
                continue
            if isinstance(owner, str) and owner:
                used.add(owner.partition(".")[0])
    return sorted(used)


def _new_modules(before: set[str]) -> list[tuple[str, str]]:
    """(name, file) of the modules imported since ``before`` was taken."""
    found = []
    for name, module in list(sys.modules.items()):
        if name in before:
            continue
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            found.append((name, path))
    return found


class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles from source, never from ``__pycache__``: a pyc is validated by the source's
    mtime in whole seconds and its size, so two quick saves of the same length would
    otherwise run stale code."""

    def get_code(self, fullname: str) -> Any:
        return self.source_to_code(self.get_data(self.path), self.path)


def _compile_app_from_source(code_dir: str) -> None:
    root = os.path.realpath(code_dir)
    skipped = (os.sep + ".venv", os.sep + "venv" + os.sep, "site-packages")

    def app_path_hook(path: str) -> importlib.machinery.FileFinder:
        real = os.path.realpath(path or ".")
        if (real == root or real.startswith(root + os.sep)) and not any(
            s in real[len(root) :] + os.sep for s in skipped
        ):
            return importlib.machinery.FileFinder(
                path,
                (_FreshSourceLoader, importlib.machinery.SOURCE_SUFFIXES),
                (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
            )
        raise ImportError("not app code")

    sys.path_hooks.insert(0, app_path_hook)
    sys.path_importer_cache.clear()
    sys.dont_write_bytecode = True
    importlib.invalidate_caches()


def run_worker(spec: dict[str, Any], sock: socket.socket, out_fd: int) -> NoReturn:
    """Body of a forked worker: set up like a Lambda sandbox, import, serve invocations."""
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(out_fd)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
    os.environ.clear()
    os.environ.update(spec["env"])
    time.tzset()
    code_dir = spec["code_dir"]
    os.chdir(code_dir)
    sys.path[:] = [code_dir, *(p for p in sys.path if p != code_dir)]
    _compile_app_from_source(code_dir)
    if spec.get("debug_port"):
        _start_debugger(int(spec["debug_port"]), bool(spec.get("debug_wait")))

    _setup_logging()
    channel = _Channel(sock)
    before = set(sys.modules)
    started = time.perf_counter()
    try:
        handler = load_handler(spec["handler"])
    except _Fault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace, "")
        channel.send({"t": "init_error"}, error)
        os._exit(0)
    except BaseException as exc:  # an exception raised by the module's own code at import
        error = make_error(str(exc), type(exc).__name__, _user_trace(exc.__traceback__), "")
        channel.send({"t": "init_error"}, error)
        os._exit(0)
    init_ms = (time.perf_counter() - started) * 1000
    modules = _new_modules(before)
    uses = _packages_used([name for name, _path in modules])
    channel.send({"t": "ready", "init_ms": init_ms, "modules": modules, "uses": uses})
    _serve(channel, handler)


def _serve(channel: _Channel, handler: Any) -> NoReturn:
    while True:
        frame = channel.read()
        if frame is None:
            os._exit(0)
        header, body = frame
        request_id = header["id"]
        _REQUEST_ID.request_id = request_id
        trace_id = header.get("trace_id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            try:
                event = (
                    json.loads(body)
                    if header.get("ct", "application/json") == ("application/json")
                    else body
                )
            except ValueError as exc:
                raise _Fault(UNMARSHAL_ERROR, f"Unable to unmarshal input: {exc}") from None
            context = LambdaContext(
                request_id,
                header.get("client_context"),
                header.get("identity"),
                header["deadline_ms"],
                header.get("arn"),
                header.get("tenant_id"),
            )
            result = handler(event, context)
            payload, content_type = marshal(result)
        except _Fault as fault:
            error = make_error(fault.message, fault.error_type, fault.trace, request_id)
            _log_error(error)
            channel.send({"t": "error", "id": request_id, "mem": _peak_kb()}, error)
            continue
        except Exception as exc:
            error = make_error(
                str(exc), type(exc).__name__, _user_trace(exc.__traceback__), request_id
            )
            _log_error(error)
            channel.send({"t": "error", "id": request_id, "mem": _peak_kb()}, error)
            continue
        except SystemExit as exc:
            # Lambda's runtime process exits too; the runner reports Runtime.ExitError.
            sys.stdout.flush()
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        channel.send(
            {"t": "result", "id": request_id, "ct": content_type, "mem": _peak_kb()}, payload
        )


def _peak_kb() -> int:
    """The process's peak resident memory so far (VmHWM), in KB, for the invocation record:
    a system call here costs far less than the runner reading /proc for it."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS counts bytes


def _start_debugger(port: int, wait: bool) -> None:
    try:
        import debugpy  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        sys.stderr.write(
            "[pylive] --debug needs debugpy in the app's interpreter: pip install debugpy\n"
        )
        return
    debugpy.listen(("127.0.0.1", port))
    if wait:
        debugpy.wait_for_client()


# --------------------------------------------------------------------------------------
# Zygote


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


def _fork_worker(
    spec: dict[str, Any], fds: list[int], control: socket.socket, wake_r: int, wake_w: int
) -> int:
    worker_fd, out_fd = fds
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


def main() -> NoReturn:
    # Started by path: drop this file's folder from sys.path so it shadows nothing of the app.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    control = socket.socket(fileno=int(sys.argv[1]))
    run_zygote(control, sys.argv[2:])


if __name__ == "__main__":
    main()
