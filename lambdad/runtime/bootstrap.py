"""The process side of an execution environment: a zygote that forks workers, and the worker loop.

Stdlib only and Python 3.8 compatible: this runs under whatever interpreter a function names.

Why a zygote: starting a fresh interpreter and importing this runtime costs 25-40 ms; forking a
process that has already done so costs about 1.5 ms. lambdad starts one zygote per interpreter;
each new execution environment (a cold start) is a fork of it, which then imports the handler.

Protocol (see `wire`): the parent sends the zygote `spawn` requests carrying two file
descriptors (the worker's control socket and its output pipe) and `reap` requests; it talks to
each worker over that worker's control socket. A handler's stdout and stderr go to the output
pipe, never to the control socket, so `print` cannot corrupt the protocol.
"""

from __future__ import annotations

import array
import contextlib
import json
import logging
import os
import resource
import signal
import socket
import sys
import time
import traceback

from lambdad.runtime import wire, writes
from lambdad.runtime.context import LambdaContext

#: Lambda's limit on a synchronous response (the error message quotes this number).
MAX_RESPONSE_BYTES = 6291556
#: The AWS runtime joins the lines of an error log record with CR and indents with NO-BREAK SPACE.
ERROR_LINE_SEPARATOR = "\r"
ERROR_INDENT = "\u00a0"

_request_id = ""
_base_sys_path: list = []


class Fault(Exception):
    """A runtime error with a Lambda error type (Runtime.ImportModuleError, Runtime.MarshalError, ...)."""

    def __init__(self, error_type: str, message: str, trace: list | None = None) -> None:
        Exception.__init__(self, message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


# -- zygote -------------------------------------------------------------------------------------------


def zygote_main(fd: int, root: str) -> None:
    """Serve spawn/reap requests on `fd` until the parent closes it, then take every worker down.

    `root` is the folder holding the `lambdad` package, put on `sys.path` only to import this
    runtime; workers get the interpreter's own path back, with their code folder first.
    """
    global _base_sys_path
    _base_sys_path = [p for p in sys.path if p not in ("", root)]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    wire.send(fd, {"t": "hello", "pid": os.getpid(), "python": "%d.%d.%d" % sys.version_info[:3]})
    children: dict[int, dict | None] = {}  # pid -> exit status once reaped, until it is reported
    while True:
        try:
            head, fds = _recv_request(sock)
        except (EOFError, OSError):
            break
        op = head["t"]
        if op == "spawn":
            pid = os.fork()
            if pid == 0:
                sock.close()
                _run_worker(head, fds[0], fds[1])  # never returns
            _own_group(pid)
            for f in fds:
                os.close(f)
            children[pid] = None
            wire.send(fd, {"t": "spawned", "pid": pid})
        elif op == "reap":
            pid = head["pid"]
            status = _wait(pid, head.get("wait_s", 0.0), children)
            if status is not None:
                children.pop(pid, None)
                _kill_group(pid)  # whatever the environment started and left running goes with it
            wire.send(fd, {"t": "reaped", "pid": pid, "status": status})
        elif op == "kill":
            pid = head["pid"]
            if pid in children and children[pid] is None:  # never signal a pid already reaped
                _kill_group(pid)
            wire.send(fd, {"t": "killed", "pid": pid})
    for pid, status in list(children.items()):
        _kill_group(pid)
        if status is None:
            _wait(pid, 5.0, children)


def _own_group(pid: int) -> None:
    """Each environment leads its own process group, so that killing it kills what it started."""
    with contextlib.suppress(OSError):  # the child got there first, or already exited
        os.setpgid(pid, pid)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _recv_request(sock: socket.socket) -> tuple[dict, list]:
    fds = array.array("i")
    # CLOEXEC: a process the handler starts must not inherit the control socket (it would keep it open
    # after the worker dies, and hide the death).
    flags = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
    data, ancdata, _flags, _addr = sock.recvmsg(wire.PREFIX.size, socket.CMSG_LEN(4 * fds.itemsize), flags)
    if not data:
        raise EOFError
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    if len(data) < wire.PREFIX.size:
        data += wire._read_exactly(sock.fileno(), wire.PREFIX.size - len(data))
    hlen, _blen = wire.PREFIX.unpack(data)
    head = json.loads(wire._read_exactly(sock.fileno(), hlen))
    return head, list(fds)


def _wait(pid: int, wait_s: float, statuses: dict) -> dict | None:
    """Reap `pid`, waiting up to `wait_s`; the exit status as {"code": n} or {"signal": n}, None if alive."""
    if statuses.get(pid) is not None:
        return statuses[pid]
    deadline = time.monotonic() + wait_s
    while True:
        try:
            done, raw = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return statuses.get(pid) or {"code": None}
        if done:
            status = {"signal": os.WTERMSIG(raw)} if os.WIFSIGNALED(raw) else {"code": os.WEXITSTATUS(raw)}
            statuses[pid] = status
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.002)


# -- worker -------------------------------------------------------------------------------------------


def _run_worker(spec: dict, ctrl: int, out: int) -> None:
    code = 0
    try:
        os.setpgid(0, 0)
        _become_environment(spec, out)
        code = _serve(spec, ctrl)
    except SystemExit as e:  # sys.exit() in a handler ends the runtime, as on Lambda
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            sys.stderr.write("%s\n" % (e.code,))
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(code)


def _become_environment(spec: dict, out: int) -> None:
    """Turn the fresh fork into the function's environment: output, variables, folder, import path."""
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    sys.stdout = _unbuffered_text(1)
    sys.stderr = _unbuffered_text(2)
    os.environ.clear()
    os.environ.update(spec["env"])
    if hasattr(time, "tzset"):
        time.tzset()
    code = spec["code"]
    os.chdir(code)
    extra = [p for p in spec["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [code, *extra, *_base_sys_path]
    sys.argv = [spec.get("argv0", "bootstrap")]
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the zygote ignores it; handlers should not
    _setup_logging()


def _unbuffered_text(fd: int):
    import io

    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True
    )


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        return True


class _StdoutHandler(logging.Handler):
    """Writes through the current `sys.stdout`, as the AWS runtime's log sink does."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record))
        except Exception:
            self.handleError(record)


def _setup_logging() -> None:
    logging.Formatter.converter = time.gmtime
    handler = _StdoutHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
        )
    )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in ("DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL"):
        root.setLevel("WARNING" if level == "WARN" else "CRITICAL" if level == "FATAL" else level)


def _serve(spec: dict, ctrl: int) -> int:
    try:
        handler = _load_handler(spec["handler"])
    except Fault as f:
        error = make_error(f.message, f.error_type, f.trace, "")
        _log_error(error)
        wire.send(ctrl, {"t": "init_error", "maxrss_kb": _maxrss_kb()}, json.dumps(error).encode())
        return 1
    wire.send(ctrl, {"t": "ready", "maxrss_kb": _maxrss_kb()})
    writes.install(ctrl)
    frames = wire.FrameStream(ctrl)
    while True:
        try:
            head, body = frames.recv()
        except EOFError:
            return 0
        head, body = _invoke(handler, head, body)
        with writes.send_lock:
            wire.send(ctrl, head, body)


def _load_handler(name: str):
    import importlib

    try:
        module_name, function_name = name.rsplit(".", 1)
    except ValueError as e:
        raise Fault("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (name, e)) from None
    module_name = module_name.replace("/", ".")
    # No .pyc of the handler's code, as on Lambda (read-only /var/task); the daemon also removes the
    # .pyc of a file it sees change (a .pyc is trusted if its source's mtime, in seconds, and size match).
    sys.dont_write_bytecode = True
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise Fault("Runtime.BuiltInModuleConflict", "Cannot use built-in module %s as a handler module" % module_name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        # AWS sends no stack trace here; the handler's own lines (which import failed) help more.
        frames = traceback.extract_tb(sys.exc_info()[2])
        internal = (__file__, importlib.__file__)
        trace = traceback.format_list(
            [f for f in frames if f.filename not in internal and not f.filename.startswith("<frozen")]
        )
        message = "Unable to import module '%s': %s" % (module_name, e)
        raise Fault("Runtime.ImportModuleError", message, trace) from None
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, (e.text or "").strip())]
        message = "Syntax error in module '%s': %s" % (module_name, e)
        raise Fault("Runtime.UserCodeSyntaxError", message, trace) from None
    except Exception as e:  # module-level code raised: the AWS runtime reports the exception itself
        raise Fault(type(e).__name__, str(e), _user_frames(sys.exc_info()[2])) from None
    try:
        return getattr(module, function_name)
    except AttributeError:
        message = "Handler '%s' missing on module '%s'" % (function_name, module_name)
        raise Fault("Runtime.HandlerNotFound", message) from None


def _invoke(handler, head: dict, body: bytes) -> tuple[dict, bytes]:
    writes.begin()
    try:
        return _run_handler(handler, head, body)
    finally:
        writes.end()


def _run_handler(handler, head: dict, body: bytes) -> tuple[dict, bytes]:
    global _request_id
    request_id = head["id"]
    _request_id = request_id
    if head.get("trace_id"):
        os.environ["_X_AMZN_TRACE_ID"] = head["trace_id"]
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    try:
        context = LambdaContext(
            request_id,
            head["deadline_ms"],
            head["arn"],
            _parse_json_field(head.get("client_context"), "Client Context"),
            _parse_json_field(head.get("identity"), "Cognito Identity"),
        )
        try:
            event = json.loads(body)
        except ValueError as e:
            raise Fault("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e) from None
        result = handler(event, context)
        if isinstance(result, bytes):
            payload = result
        else:
            try:
                payload = json.dumps(result, default=_json_default).encode()
            except (TypeError, ValueError, OverflowError) as e:
                raise Fault("Runtime.MarshalError", "Unable to marshal response: %s" % e) from None
        if len(payload) > MAX_RESPONSE_BYTES:
            return _too_large()
        return {"t": "result", "ok": True, "maxrss_kb": _maxrss_kb()}, payload
    except Fault as f:
        error = make_error(f.message, f.error_type, f.trace, request_id)
    except Exception as e:
        error = make_error(str(e), type(e).__name__, _user_frames(sys.exc_info()[2]), request_id)
    _log_error(error)
    document = json.dumps(error).encode()
    if len(document) > MAX_RESPONSE_BYTES:
        return _too_large()
    return {"t": "result", "ok": False, "maxrss_kb": _maxrss_kb()}, document


def _too_large() -> tuple[dict, bytes]:
    """Lambda's platform answers an oversized response with this short document (no stack, no id)."""
    error = {
        "errorMessage": "Response payload size exceeded maximum allowed payload size (%d bytes)." % MAX_RESPONSE_BYTES,
        "errorType": "Function.ResponseSizeTooLarge",
    }
    return {"t": "result", "ok": False, "maxrss_kb": _maxrss_kb()}, json.dumps(error).encode()


def _parse_json_field(text: str | None, what: str):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise Fault("Runtime.LambdaContextUnmarshalError", "Unable to parse %s JSON: %s" % (what, e)) from None


def _json_default(value):
    if type(value).__name__ == "Decimal":  # DynamoDB numbers; the AWS runtime writes them as numbers
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


def _user_frames(tb) -> list:
    """The traceback without this runtime's own frames, formatted as the AWS runtime does."""
    frames = traceback.extract_tb(tb)
    while frames and frames[0].filename == __file__:
        frames = frames[1:]
    return traceback.format_list(frames)


def make_error(message: str, error_type: str, trace: list, request_id: str) -> dict:
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id,
        "stackTrace": trace or [],
    }


def _log_error(error: dict) -> None:
    """The `[ERROR] Type: message` record the AWS runtime writes, lines joined with CR."""
    description = "[ERROR] %s: %s" % (error["errorType"], error["errorMessage"]) if error["errorMessage"] else (
        "[ERROR] %s" % error["errorType"]
    )
    lines = [description, "Traceback (most recent call last):"]
    for element in error["stackTrace"]:
        for line in element.splitlines():
            stripped = line.lstrip(" ")
            lines.append(ERROR_INDENT * (len(line) - len(stripped)) + stripped)
    sys.stdout.write(ERROR_LINE_SEPARATOR.join(lines) + "\n")


def _maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


