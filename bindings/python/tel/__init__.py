# SPDX-License-Identifier: MIT
"""tel: anonymous, opt-out usage telemetry for command-line programs.

A thin binding over libtel: the queue, the user's opt-outs, the limits and
the format all live in the C library, so a Python program gets the same
guarantees as a C one.

    import tel
    tel.emit("mycli", "deploy", {"services": 3, "strategy": "rolling"})

A program recording several events opens a handle:

    with tel.Telemetry("mycli", version="1.4.2") as t:
        if t.notice_due():
            print("mycli collects anonymous usage data ...", file=sys.stderr)
            t.notice_shown()
        with t.command("deploy", options=["force"]):
            ...
        t.spawn_sync()

Errors are TelError, carrying tel's code and its one-line detail.  An emit
that failed for a reason of the environment (no HOME, a read-only or full
disk, a damaged queue) never raises unless strict=True was asked for: it
returns False.  A mistake of the caller (a bad event name, a property tel
cannot hold, an event over a limit) always raises.
"""
import contextlib
import ctypes
import enum
import math
import struct
import threading
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence, Tuple, Union

from . import _lib

__all__ = [
    "OK", "DISABLED", "ERR_INVALID", "ERR_LIMIT", "ERR_NOSTATE", "ERR_IO", "ERR_NOMEM",
    "ERR_CORRUPT", "ERR_BUSY", "ERR_CONFIG", "ERR_STATE", "ERR_NOTFOUND",
    "Source", "EnvMeaning", "ErrorDetail", "TelError", "Telemetry", "Command", "Span", "emit", "enable", "disable",
    "forget", "status", "sanitize", "version", "strerror", "last_error",
]

# tel_error, as in tel.h.
OK = 0
DISABLED = 1
ERR_INVALID = -1
ERR_LIMIT = -2
ERR_NOSTATE = -3
ERR_IO = -4
ERR_NOMEM = -5
ERR_CORRUPT = -6
ERR_BUSY = -7
ERR_CONFIG = -8
ERR_STATE = -9
ERR_NOTFOUND = -10

# Failures that come from the machine or the user's files, not from the
# caller: an emit returns False on these unless strict=True.
_ENVIRONMENT = frozenset({ERR_NOSTATE, ERR_IO, ERR_NOMEM, ERR_CORRUPT, ERR_BUSY, ERR_CONFIG, ERR_NOTFOUND})

# tel_type, as in tel.h.
_T_NIL, _T_BOOL, _T_INT, _T_FLOAT, _T_STR, _T_ARRAY, _T_MAP = 0, 1, 2, 3, 4, 5, 6
_MAX_WALK = 16
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

Scalar = Union[None, bool, int, float, str]
PropValue = Union[Scalar, Sequence[Any], Mapping[str, Any]]
Props = Mapping[str, PropValue]


class Source(enum.IntEnum):
    """Where the host's 'enabled' setting comes from (tel_source)."""

    HOST = 1  # the program's own default
    FLAG = 4  # an explicit command-line flag such as --no-telemetry


class EnvMeaning(enum.IntEnum):
    """What a variable of the host's own declared with declare_env means (tel_env_meaning)."""

    OFF_IF_TRUE = 1        # NAME=1 is the user's opt-out: ASTRO_TELEMETRY_DISABLED=1
    OFF_IF_SET = 2         # NAME set at all is the user's opt-out: CQ_NO_TELEMETRY
    ON_OFF = 3             # NAME=1 is the user's on, NAME=0 the user's opt-out: WERF_TELEMETRY
    DEBUG_IF_CONTAINS = 4  # NAME's list holds the word: debug for this run: DEBUG=astro:telemetry
    LOG_FILE = 5           # NAME is an audit log file: WERF_TELEMETRY_LOG_FILE
    DETAILED_ERRORS = 6    # NAME set sends sanitised error messages: CQ_DEBUG_TELEMETRY


class ErrorDetail(enum.IntEnum):
    """How much of an error command_exited records (tel_error_detail)."""

    CLASS = 0      # the error's class only (the default)
    SANITIZED = 1  # the class and the message, through sanitize()


class TelError(Exception):
    """A tel failure: .code is the tel_error value, .detail tel's one-line reason."""

    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        msg = strerror(code)
        super().__init__("%s: %s" % (msg, detail) if detail else msg)

    @property
    def environmental(self) -> bool:
        """True when the machine or the user's files caused it, not the caller."""
        return self.code in _ENVIRONMENT


def strerror(code: int) -> str:
    """tel's one-line description of a code."""
    try:
        return _lib.lib().tel_strerror(code).decode()
    except OSError:
        return "tel error %d" % code


def last_error() -> str:
    """The detail of the last failure of a tel call on this thread, or ''."""
    return _lib.lib().tel_last_error().decode("utf-8", "replace")


def version() -> str:
    """libtel's version string."""
    return _lib.lib().tel_version().decode()


def _error(code: int) -> TelError:
    return TelError(code, last_error())


def _no_library(e: OSError) -> TelError:
    return TelError(ERR_NOTFOUND, str(e))


def _text(what: str, s: str) -> bytes:
    """UTF-8 bytes of s for C; a NUL or a lone surrogate is the caller's mistake."""
    if not isinstance(s, str):
        raise TelError(ERR_INVALID, "%s must be a str, not %s" % (what, type(s).__name__))
    try:
        b = s.encode("utf-8")
    except UnicodeEncodeError:
        raise TelError(ERR_INVALID, "%s is not valid UTF-8 text" % what) from None
    if b"\0" in b:
        raise TelError(ERR_INVALID, "%s holds a NUL character" % what)
    return b


# struct tel_prop in the struct module's native layout: the key pointer,
# the tel_type, padding, then the 8-byte union by the member the type uses.
_LAYOUT = {_T_NIL: "Pi4x8x", _T_BOOL: "Pi4xi4x", _T_INT: "Pi4xq", _T_FLOAT: "Pi4xd",
           _T_STR: "Pi4xP", _T_ARRAY: "Pi4xq", _T_MAP: "Pi4xq"}


class _Props:
    """A tel_prop array for one call, holding the bytes its pointers refer to.

    Lists, tuples and mappings become tel's structured values, laid out
    flat as tel.h describes: the array or map item, then its children in
    pre-order.  libtel checks the depth and counts.

    The array is packed in one struct.pack call, and every key and string
    value sits in one NUL-separated buffer: setting the fields of ctypes
    structures one by one cost more than the rest of a Python emit."""

    __slots__ = ("array", "count", "_texts", "_size")

    def __init__(self, props: Optional[Props]) -> None:
        items: list = []
        self._texts: list = []
        self._size = 0
        for key, value in (props.items() if props else ()):
            self._flatten(items, self._text_at(_text("property key", key)), key, value, 0)
        self.count = len(items)
        if not items:
            self.array = None
            return
        blob = b"\0".join(self._texts) + b"\0"
        base = ctypes.cast(blob, ctypes.c_void_p).value or 0
        fmt, vals = ["@"], []
        for key, typ, v in items:
            fmt.append(_LAYOUT[typ])
            vals.append(0 if key is None else base + key)
            vals.append(typ)
            if typ == _T_STR:
                vals.append(base + v)
            elif typ != _T_NIL:
                vals.append(v)
        # The texts must outlive the call: the array's pointers are into blob.
        self._texts = blob  # type: ignore[assignment]
        self.array = struct.pack("".join(fmt), *vals)

    def _text_at(self, b: bytes) -> int:
        """Adds b to the texts; its offset in the buffer they make."""
        at = self._size
        self._texts.append(b)
        self._size += len(b) + 1
        return at

    def _flatten(self, items: list, key: Optional[int], name: str, value: Any, depth: int) -> None:
        if value is None:
            items.append((key, _T_NIL, None))
        elif isinstance(value, bool):
            items.append((key, _T_BOOL, int(value)))
        elif isinstance(value, int):
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise TelError(ERR_INVALID, "property '%s' is an integer outside 64 bits" % name)
            items.append((key, _T_INT, value))
        elif isinstance(value, float):
            items.append((key, _T_FLOAT, value))
        elif isinstance(value, str):
            items.append((key, _T_STR, self._text_at(_text("property '%s'" % name, value))))
        elif isinstance(value, (Mapping, list, tuple)) and depth >= _MAX_WALK:
            # libtel refuses far less; this only stops a value that holds itself.
            raise TelError(ERR_LIMIT, "property '%s' nests deeper than tel allows" % name)
        elif isinstance(value, Mapping):
            items.append((key, _T_MAP, len(value)))
            for k, v in value.items():
                self._flatten(items, self._text_at(_text("key in '%s'" % name, k)), name, v, depth + 1)
        elif isinstance(value, (list, tuple)):
            items.append((key, _T_ARRAY, len(value)))
            for v in value:
                self._flatten(items, None, name, v, depth + 1)
        else:
            raise TelError(ERR_INVALID, "property '%s' holds a %s; tel records None, bool, int, float, str, "
                           "and lists and dicts of them" % (name, type(value).__name__))


def _outcome(rc: int, strict: bool) -> bool:
    """True when recorded; False when off or failed for the environment; raises otherwise."""
    if rc >= 0:
        return rc == OK
    err = _error(rc)
    if strict or not err.environmental:
        raise err
    return False


# One-call emits open and close the app's queue each time; LMDB must not
# have one queue open twice in a process at once, so they take turns.
_emit_lock = threading.Lock()


def emit(app: str, event: str, props: Optional[Props] = None, *, strict: bool = False) -> bool:
    """Records one event for app: True when queued, False when telemetry is off
    or the environment kept it from being queued (TelError instead with strict=True).
    A program recording several events should open a Telemetry handle."""
    a, e, p = _text("app", app), _text("event", event), _Props(props)
    try:
        lib = _lib.lib()
    except OSError as ex:
        if strict:
            raise _no_library(ex) from None
        return False
    with _emit_lock:
        return _outcome(lib.tel_emit(a, e, p.array, p.count), strict)


def _check(rc: int) -> int:
    if rc < 0:
        raise _error(rc)
    return rc


def enable(app: str) -> None:
    """Records the user's choice to turn telemetry on (telemetry.conf)."""
    _check(_lib.lib().tel_set_enabled(_text("app", app), 1))


def disable(app: str) -> None:
    """Records the user's opt-out (telemetry.conf) and purges the queue."""
    _check(_lib.lib().tel_set_enabled(_text("app", app), 0))


def forget(app: str) -> None:
    """Deletes the anonymous id and purges the queue; the next event gets a new id.
    When the host offered erasure (Telemetry(erasure=True)), first leaves a
    request, sent by tel-sync, to erase the old id's events at the collector."""
    _check(_lib.lib().tel_forget(_text("app", app)))


def sanitize(text: str) -> str:
    """text with quoted text, URLs, option and credential values, paths (also
    with blanks), user and host names, e-mail and IP addresses and long
    tokens replaced by placeholders, as tel cleans error messages
    (tel_sanitize(3) lists the rules); for a host's own strings."""
    raw = _text("text", text)
    buf = ctypes.create_string_buffer(len(raw) * 8 + 64)
    _check(_lib.lib().tel_sanitize(raw, buf, len(buf)))
    return buf.value.decode("utf-8", "replace")


def status(app: str) -> str:
    """One line for a program's `telemetry status`: on/off, what decided it, queue depth."""
    buf = ctypes.create_string_buffer(512)
    _check(_lib.lib().tel_status_line(_text("app", app), buf, len(buf)))
    return buf.value.decode("utf-8", "replace")


class Command(contextlib.ContextDecorator):
    """Records command.started on entry and command.exited on exit; see Telemetry.command."""

    def __init__(self, tel: "Telemetry", name: str, options: Iterable[str], env_options: Iterable[str]) -> None:
        self._tel, self._name = tel, name
        self._options, self._env_options = list(options), list(env_options)
        self.exit_code = 0

    def __enter__(self) -> "Command":
        self._tel.command_started(self._name, self._options, self._env_options)
        return self

    def __exit__(self, typ: Any, exc: Any, tb: Any) -> None:
        code, cls, msg = self.exit_code, None, None
        if isinstance(exc, SystemExit):
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        elif exc is not None:
            code, cls, msg = (self.exit_code or 1), typ.__name__, str(exc)
        self._tel.command_exited(code, cls, msg)


class Span:
    """One timed part of an operation (tel_span_start/tel_span_end); a context manager.
    Leaving the block by an exception records status 1."""

    def __init__(self, tel: "Telemetry", s: Optional[int]) -> None:
        self._tel, self._s = tel, s

    def span(self, name: str) -> "Span":
        """A child span of this one."""
        return self._tel.span(name, parent=self)

    def end(self, status: int = 0) -> bool:
        """Records the span with the host's outcome code (0: success); later calls do nothing."""
        t = self._tel
        with t._lock:
            s, self._s = self._s, None
            if s is None or t._h is None:
                return False
            t._spans.discard(self)
            return _outcome(t._lib.tel_span_end(s, int(status)), t.strict)

    def __enter__(self) -> "Span":
        return self

    def __exit__(self, typ: Any, exc: Any, tb: Any) -> None:
        self.end(0 if exc is None else 1)


class Telemetry:
    """A handle on one app's queue (tel_open/tel_close); a context manager.

    Safe to share between threads: calls on one handle take turns.  Keep one
    handle per app per process.  With strict=False (the default) a handle
    that could not be opened for a reason of the environment records nothing
    and every emit returns False; with strict=True the constructor raises.
    """

    def __init__(self, app: str, *, version: Optional[str] = None, endpoint: Optional[str] = None,
                 token: Optional[str] = None, enabled: Optional[bool] = None, source: Source = Source.HOST,
                 logging: Optional[bool] = None, log: Any = None,
                 caps: Optional[Tuple[int, int, int]] = None, project_salt: Optional[str] = None,
                 require_notice: bool = False, default_enabled: Optional[bool] = None,
                 declare_env: Iterable[Tuple[Any, ...]] = (), inspect: Optional[str] = None,
                 debug: bool = False, error_detail: Optional[ErrorDetail] = None,
                 erasure: Optional[bool] = None, project_linkable: bool = False,
                 exec_id: Optional[str] = None, state_dir: Optional[str] = None,
                 installation_id: Optional[str] = None, strict: bool = False) -> None:
        self.app = app
        self.strict = strict
        self._lock = threading.RLock()
        self._h: Optional[int] = None
        self._log_cb: Any = None
        self._spans: set = set()
        try:
            lib = _lib.lib()
        except OSError as ex:
            if strict:
                raise _no_library(ex) from None
            return
        self._lib = lib
        o = lib.tel_options_new(_text("app", app))
        if not o:
            raise _error(ERR_INVALID)
        try:
            self._configure(o, version, endpoint, token, enabled, source, logging, log, caps,
                            project_salt, require_notice)
            self._knobs(o, default_enabled, declare_env, inspect, debug, error_detail, erasure)
            self._run(o, project_linkable, exec_id)
            self._daemon(o, state_dir, installation_id)
        except BaseException:
            lib.tel_options_free(o)
            raise
        h = ctypes.c_void_p()
        rc = lib.tel_open(ctypes.byref(h), o)
        self._h = h.value
        self.open_status = rc
        if rc < 0 and (strict or not _error(rc).environmental):
            self.close()
            raise _error(rc)

    def _configure(self, o: int, version: Optional[str], endpoint: Optional[str], token: Optional[str],
                   enabled: Optional[bool], source: Source, logging: Optional[bool], log: Any,
                   caps: Optional[Tuple[int, int, int]], salt: Optional[str], require_notice: bool) -> None:
        lib = self._lib
        if version is not None:
            _check(lib.tel_options_set_app_version(o, _text("version", version)))
        if endpoint is not None:
            _check(lib.tel_options_set_endpoint(o, _text("endpoint", endpoint)))
        if token is not None:
            _check(lib.tel_options_set_token(o, _text("token", token)))
        if enabled is not None:
            _check(lib.tel_options_set_enabled(o, int(enabled), int(source)))
        if logging is not None or log is not None:
            if log is not None:
                # The line is valid only during the callback: decoded at once.
                self._log_cb = _lib.LOG_FN(lambda ud, line: log(line.decode("utf-8", "replace")))
            _check(lib.tel_options_set_logging(o, int(logging is not False), self._log_cb or _lib.LOG_FN(), None))
        if caps is not None:
            _check(lib.tel_options_set_caps(o, *caps))
        if salt is not None:
            _check(lib.tel_options_set_project_salt(o, _text("project salt", salt)))
        if require_notice:
            _check(lib.tel_options_set_require_notice(o, 1))

    def _knobs(self, o: int, default_enabled: Optional[bool], declare_env: Iterable[Tuple[Any, ...]],
               inspect: Optional[str], debug: bool, error_detail: Optional[ErrorDetail],
               erasure: Optional[bool]) -> None:
        lib = self._lib
        if default_enabled is not None:
            _check(lib.tel_options_set_default_enabled(o, int(default_enabled)))
        for decl in declare_env:
            name, meaning, word = (tuple(decl) + (None,))[:3]
            _check(lib.tel_options_declare_env(o, _text("variable name", name), int(meaning),
                                               None if word is None else _text("word", word)))
        if inspect is not None:
            _check(lib.tel_options_set_inspect(o, _text("inspect path", inspect)))
        if debug:
            _check(lib.tel_options_set_debug(o, 1))
        if error_detail is not None:
            _check(lib.tel_options_set_error_detail(o, int(error_detail)))
        if erasure is not None:
            _check(lib.tel_options_set_erasure(o, int(erasure)))

    def _run(self, o: int, linkable: bool, exec_id: Optional[str]) -> None:
        lib = self._lib
        if linkable:
            _check(lib.tel_options_set_project_linkable(o, 1))
        if exec_id is not None:
            _check(lib.tel_options_set_exec_id(o, _text("execution id", exec_id)))

    def _daemon(self, o: int, state_dir: Optional[str], installation_id: Optional[str]) -> None:
        lib = self._lib
        if state_dir is not None:
            _check(lib.tel_options_set_state_dir(o, _text("state directory", state_dir)))
        if installation_id is not None:
            _check(lib.tel_options_set_installation_id(o, _text("installation id", installation_id)))

    def __enter__(self) -> "Telemetry":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def close(self) -> None:
        """Commits an open batch and releases the handle; later calls record nothing."""
        with self._lock:
            if self._h is not None:
                self._lib.tel_close(self._h)
                self._h = None
            for span in self._spans:
                span._s = None  # freed, unrecorded, by tel_close
            self._spans.clear()

    def _call(self, fn: str, *args: Any) -> bool:
        with self._lock:
            if self._h is None:
                if self.strict:
                    raise TelError(ERR_STATE, "the handle is closed or was never opened")
                return False
            return _outcome(getattr(self._lib, fn)(self._h, *args), self.strict)

    @property
    def enabled(self) -> bool:
        """True when this handle records events."""
        with self._lock:
            return self._h is not None and bool(self._lib.tel_enabled(self._h))

    def emit(self, event: str, props: Optional[Props] = None) -> bool:
        """Records one event: True when queued (durably, outside a batch)."""
        e, p = _text("event", event), _Props(props)
        return self._call("tel_emit_event", e, p.array, p.count)

    @contextlib.contextmanager
    def batch(self) -> Iterator["Telemetry"]:
        """Buffers the emits of the block and writes them in one transaction at its end.
        The handle stays locked to this thread for the block."""
        with self._lock:
            self._call("tel_batch_begin")
            try:
                yield self
            finally:
                self._call("tel_batch_commit")

    def metric(self, name: str, value: float, labels: Optional[Mapping[str, str]] = None) -> bool:
        """Records one metric sample with its labels."""
        keep = []
        for k, v in (labels or {}).items():
            keep += [_text("label name", k), _text("label '%s'" % k, v)]
        arr = (ctypes.c_char_p * max(len(keep), 1))(*keep)
        return self._call("tel_emit_metric", _text("metric name", name), float(value), arr, len(keep) // 2)

    def prometheus(self, text: Union[str, bytes]) -> bool:
        """Records every sample of a Prometheus text exposition, all or none."""
        b = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        return self._call("tel_emit_prometheus", b, len(b))

    def command_started(self, command: str, options: Iterable[str] = (), env_options: Iterable[str] = ()) -> bool:
        """Records command.started with the names (never the values) of the options used:
        `options` given on the command line, `env_options` through the environment."""
        uses = [(_text("option name", n), 0) for n in options] + [(_text("option name", n), 1) for n in env_options]
        arr = (_lib.OptionUse * max(len(uses), 1))(*uses)
        return self._call("tel_command_started", _text("command", command), arr, len(uses))

    def command_exited(self, exit_code: int, error_class: Optional[str] = None,
                       error_message: Optional[str] = None) -> bool:
        """Records command.exited with the exit code and the duration since command_started."""
        cls = _text("error class", error_class) if error_class is not None else None
        msg = _text("error message", error_message) if error_message is not None else None
        return self._call("tel_command_exited", int(exit_code), cls, msg)

    def command(self, name: str, options: Iterable[str] = (), env_options: Iterable[str] = ()) -> Command:
        """A context manager (or decorator) around one command: command.started on entry,
        command.exited on exit with code 0, SystemExit's code, or 1 and the exception's
        class and message (recorded only under debug telemetry) on an exception.
        Set .exit_code on the returned object for a non-zero exit without an exception."""
        return Command(self, name, options, env_options)

    def spawn_sync(self, min_interval: int = 0) -> bool:
        """Starts a detached tel-sync when something is queued; True when one was started."""
        return self._call("tel_spawn_sync", int(min_interval))

    def exec_id(self) -> str:
        """The run's execution id (UUID text), to hand to a child process through
        <APP>_TELEMETRY_EXEC_ID; '' when telemetry is off."""
        buf = ctypes.create_string_buffer(37)
        with self._lock:
            if self._h is None or self._lib.tel_exec_id(self._h, buf) != OK:
                return ""
        return buf.value.decode()

    def set_enabled(self, on: bool) -> bool:
        """Switches the open handle off (an opt-out: what was queued is deleted) or back
        on, for a long-running host; True when it records afterwards."""
        return self._call("tel_handle_set_enabled", int(on))

    def span(self, name: str, parent: Optional["Span"] = None) -> "Span":
        """Starts timing one part of an operation; end() or the end of a `with` block
        records it as a 'span' event with its duration and its parent.  A bad name or
        parent raises; with 1024 spans of the handle open already, or no memory, the
        span records nothing (TelError instead with strict=True)."""
        n = _text("span name", name)
        with self._lock:
            if self._h is None:
                return Span(self, None)
            p = parent._s if parent is not None else None
            out = ctypes.c_void_p()
            rc = self._lib.tel_span_start(ctypes.byref(out), self._h, n, p)
            if rc < 0 and (self.strict or rc == ERR_INVALID):
                raise _error(rc)
            span = Span(self, out.value)
            if out.value:
                self._spans.add(span)
            return span

    def notice_due(self) -> bool:
        """True when the first-run notice should be printed (then call notice_shown)."""
        with self._lock:
            return self._h is not None and bool(self._lib.tel_notice_due(self._h))

    def notice_shown(self) -> bool:
        """Records that the first-run notice was shown."""
        return self._call("tel_notice_shown")
