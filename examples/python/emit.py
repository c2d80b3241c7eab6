#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A Python program recording one event through libtel with ctypes.

    python3 emit.py      (the loader must find libtel.so.0: ldconfig,
                          or LD_LIBRARY_PATH for another prefix)
"""
import ctypes
import sys

# tel_type and the tel_prop struct of tel.h, laid out as C lays them out.
TEL_T_NIL, TEL_T_BOOL, TEL_T_INT, TEL_T_FLOAT, TEL_T_STR = range(5)


class _Value(ctypes.Union):
    _fields_ = [("b", ctypes.c_int), ("i", ctypes.c_int64),
                ("f", ctypes.c_double), ("s", ctypes.c_char_p)]


class Prop(ctypes.Structure):
    _fields_ = [("key", ctypes.c_char_p), ("type", ctypes.c_int), ("v", _Value)]


def prop(key, value):
    """One tel_prop from a Python value (bool before int: bool is an int)."""
    p = Prop(key=key.encode())
    if value is None:
        p.type = TEL_T_NIL
    elif isinstance(value, bool):
        p.type, p.v.b = TEL_T_BOOL, int(value)
    elif isinstance(value, int):
        p.type, p.v.i = TEL_T_INT, value
    elif isinstance(value, float):
        p.type, p.v.f = TEL_T_FLOAT, value
    else:
        p.type, p.v.s = TEL_T_STR, str(value).encode()
    return p


def emit(app, event, **props):
    """Queues one event; returns tel's code, never raises for telemetry."""
    try:
        lib = ctypes.CDLL("libtel.so.0")
    except OSError:
        return None  # no libtel here: the program runs on without it
    lib.tel_emit.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                             ctypes.POINTER(Prop), ctypes.c_size_t]
    lib.tel_emit.restype = ctypes.c_int
    arr = (Prop * len(props))(*(prop(k, v) for k, v in props.items()))
    return lib.tel_emit(app.encode(), event.encode(), arr, len(props))


if __name__ == "__main__":
    emit("example-python", "example.ran", lang="python", answer=42)
    sys.exit(0)
