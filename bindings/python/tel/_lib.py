# SPDX-License-Identifier: MIT
"""Loading libtel and declaring the C functions the package calls.

The library is looked for, in order: the path in TEL_LIBRARY; the build
directory of the source tree this package sits in (build/libtel.so.0);
the system's loader (libtel.so.0 under an installed prefix).  Nothing is
compiled: ctypes reads tel.h's ABI as declared below, which must follow
include/tel.h.
"""
import ctypes
import ctypes.util
import os
from typing import List, Optional

SONAME = "libtel.so.0"


class Prop(ctypes.Structure):
    """struct tel_prop: a key, a tel_type and a union of the values."""

    class _V(ctypes.Union):
        _fields_ = [
            ("b", ctypes.c_int),
            ("i", ctypes.c_int64),
            ("f", ctypes.c_double),
            ("s", ctypes.c_char_p),
        ]

    _fields_ = [("key", ctypes.c_char_p), ("type", ctypes.c_int), ("v", _V)]


class OptionUse(ctypes.Structure):
    """struct tel_option_use: an option's name and whether the environment set it."""

    _fields_ = [("name", ctypes.c_char_p), ("from_env", ctypes.c_int)]


LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)


def _candidates() -> List[str]:
    found = []
    env = os.environ.get("TEL_LIBRARY")
    if env:
        found.append(env)
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.path.normpath(os.path.join(here, "..", "..", "..", "build", SONAME))
    if os.path.exists(tree):
        found.append(tree)
    found.append(SONAME)
    system = ctypes.util.find_library("tel")
    if system:
        found.append(system)
    return found


def _declare(lib: ctypes.CDLL) -> None:
    c_int, c_char_p, c_void_p, c_size_t = ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t
    P = ctypes.POINTER
    sigs = {
        "tel_strerror": (c_char_p, [c_int]),
        "tel_last_error": (c_char_p, []),
        "tel_version": (c_char_p, []),
        # The properties: a packed tel_prop array (bytes) or None.
        "tel_emit": (c_int, [c_char_p, c_char_p, c_void_p, c_size_t]),
        "tel_options_new": (c_void_p, [c_char_p]),
        "tel_options_free": (None, [c_void_p]),
        "tel_options_set_app_version": (c_int, [c_void_p, c_char_p]),
        "tel_options_set_endpoint": (c_int, [c_void_p, c_char_p]),
        "tel_options_set_token": (c_int, [c_void_p, c_char_p]),
        "tel_options_set_enabled": (c_int, [c_void_p, c_int, c_int]),
        "tel_options_set_logging": (c_int, [c_void_p, c_int, LOG_FN, c_void_p]),
        "tel_options_set_caps": (c_int, [c_void_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64]),
        "tel_options_set_project_salt": (c_int, [c_void_p, c_char_p]),
        "tel_options_set_require_notice": (c_int, [c_void_p, c_int]),
        "tel_options_set_default_enabled": (c_int, [c_void_p, c_int]),
        "tel_options_declare_env": (c_int, [c_void_p, c_char_p, c_int, c_char_p]),
        "tel_options_set_inspect": (c_int, [c_void_p, c_char_p]),
        "tel_options_set_debug": (c_int, [c_void_p, c_int]),
        "tel_options_set_error_detail": (c_int, [c_void_p, c_int]),
        "tel_sanitize": (c_int, [c_char_p, c_char_p, c_size_t]),
        "tel_options_set_erasure": (c_int, [c_void_p, c_int]),
        "tel_options_set_project_linkable": (c_int, [c_void_p, c_int]),
        "tel_options_set_exec_id": (c_int, [c_void_p, c_char_p]),
        "tel_exec_id": (c_int, [c_void_p, c_char_p]),
        "tel_options_set_state_dir": (c_int, [c_void_p, c_char_p]),
        "tel_options_set_installation_id": (c_int, [c_void_p, c_char_p]),
        "tel_handle_set_enabled": (c_int, [c_void_p, c_int]),
        "tel_span_start": (c_int, [P(c_void_p), c_void_p, c_char_p, c_void_p]),
        "tel_span_end": (c_int, [c_void_p, c_int]),
        "tel_open": (c_int, [P(c_void_p), c_void_p]),
        "tel_close": (None, [c_void_p]),
        "tel_enabled": (c_int, [c_void_p]),
        "tel_emit_event": (c_int, [c_void_p, c_char_p, c_void_p, c_size_t]),
        "tel_batch_begin": (c_int, [c_void_p]),
        "tel_batch_commit": (c_int, [c_void_p]),
        "tel_emit_metric": (c_int, [c_void_p, c_char_p, ctypes.c_double, P(c_char_p), c_size_t]),
        "tel_emit_prometheus": (c_int, [c_void_p, c_char_p, c_size_t]),
        "tel_command_started": (c_int, [c_void_p, c_char_p, P(OptionUse), c_size_t]),
        "tel_command_exited": (c_int, [c_void_p, c_int, c_char_p, c_char_p]),
        "tel_spawn_sync": (c_int, [c_void_p, ctypes.c_uint]),
        "tel_notice_due": (c_int, [c_void_p]),
        "tel_notice_shown": (c_int, [c_void_p]),
        "tel_set_enabled": (c_int, [c_char_p, c_int]),
        "tel_forget": (c_int, [c_char_p]),
        "tel_status_line": (c_int, [c_char_p, c_char_p, c_size_t]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args


def load() -> ctypes.CDLL:
    """The first libtel that loads; OSError naming every place tried otherwise."""
    tried = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            continue
        _declare(lib)
        return lib
    raise OSError("tel: libtel not found; set TEL_LIBRARY to the path of %s. Tried: %s"
                  % (SONAME, "; ".join(tried)))


_LIB: Optional[ctypes.CDLL] = None


def lib() -> ctypes.CDLL:
    """libtel, loaded on first use so that importing tel never fails."""
    global _LIB
    if _LIB is None:
        _LIB = load()
    return _LIB
