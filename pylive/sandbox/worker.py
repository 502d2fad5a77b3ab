"""The body of a worker process: set up like a Lambda sandbox, import the handler the way the
runtime does, then serve invocations one at a time (the same context object, result
marshalling and error payloads as awslambdaric)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import json
import logging
import os
import resource
import socket
import sys
import time
import types
from typing import Any, NoReturn

from .context import LambdaContext
from .errors import (
    BUILT_IN_MODULE_CONFLICT,
    HANDLER_NOT_FOUND,
    IMPORT_MODULE_ERROR,
    MALFORMED_HANDLER_NAME,
    UNMARSHAL_ERROR,
    USER_CODE_SYNTAX_ERROR,
    Fault,
    log_error,
    make_error,
    marshal,
    user_trace,
)
from .frames import INIT_ERROR, AnswerFrame, Channel, InvokeFrame, ReadyFrame


def load_handler(handler: str) -> Any:
    """Import ``path/module.func`` the way the Lambda runtime does, raising ``Fault``."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as exc:
        raise Fault(MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {exc}") from None
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise Fault(
                BUILT_IN_MODULE_CONFLICT,
                f"Cannot use built-in module {modname} as a handler module",
            )
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as exc:
        raise Fault(IMPORT_MODULE_ERROR, f"Unable to import module '{modname}': {exc}") from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise Fault(
            USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{modname}': {exc}", trace
        ) from None
    try:
        return getattr(module, fname)
    except AttributeError:
        raise Fault(HANDLER_NOT_FOUND, f"Handler '{fname}' missing on module '{modname}'") from None


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
    channel = Channel(sock)
    before = set(sys.modules)
    started = time.perf_counter()
    try:
        handler = load_handler(spec["handler"])
    except Fault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace, "")
        channel.send(INIT_ERROR, error)
        os._exit(0)
    except BaseException as exc:  # an exception raised by the module's own code at import
        error = make_error(str(exc), type(exc).__name__, user_trace(exc.__traceback__), "")
        channel.send(INIT_ERROR, error)
        os._exit(0)
    init_ms = (time.perf_counter() - started) * 1000
    modules = _new_modules(before)
    uses = _packages_used([name for name, _path in modules])
    channel.send(ReadyFrame(init_ms, modules, uses).encode())
    _serve(channel, handler)


def _serve(channel: Channel, handler: Any) -> NoReturn:
    while True:
        frame = channel.read()
        if frame is None:
            os._exit(0)
        header, body = frame
        invoke = InvokeFrame.decode(header)
        request_id = invoke.id
        _REQUEST_ID.request_id = request_id
        if invoke.trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = invoke.trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            try:
                event = json.loads(body) if invoke.content_type == "application/json" else body
            except ValueError as exc:
                raise Fault(UNMARSHAL_ERROR, f"Unable to unmarshal input: {exc}") from None
            context = LambdaContext(
                request_id,
                invoke.client_context,
                invoke.identity,
                invoke.deadline_ms,
                invoke.arn,
                invoke.tenant_id,
            )
            result = handler(event, context)
            payload, content_type = marshal(result)
        except Fault as fault:
            error = make_error(fault.message, fault.error_type, fault.trace, request_id)
            log_error(error)
            channel.send(AnswerFrame(False, request_id, memory_kb=_peak_kb()).encode(), error)
            continue
        except Exception as exc:
            error = make_error(
                str(exc), type(exc).__name__, user_trace(exc.__traceback__), request_id
            )
            log_error(error)
            channel.send(AnswerFrame(False, request_id, memory_kb=_peak_kb()).encode(), error)
            continue
        except SystemExit as exc:
            # Lambda's runtime process exits too; the runner reports Runtime.ExitError.
            sys.stdout.flush()
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        answer = AnswerFrame(True, request_id, content_type, _peak_kb())
        channel.send(answer.encode(), payload)


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
