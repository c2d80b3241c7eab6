// SPDX-License-Identifier: MIT
// Package tel gives a Go command-line program anonymous, opt-out usage
// telemetry through libtel, in process.
//
//	tel.Emit("mycli", "deploy", map[string]any{"services": 3})
//
// It is a thin binding: the queue, the user's opt-outs, the limits and the
// format all live in the C library, which cgo links statically together
// with LMDB and msgpack-c, so the program stays one binary and gets the
// same guarantees as a C host.
//
// Linking: by default the package links the libtel.a of the source tree
// it sits in (build/, made by `make`) and reads tel.h from there.  Another
// build is chosen with CGO_LDFLAGS=-L<dir-with-libtel.a>; an installed
// libtel (make install) with the build tag tel_installed and, for a prefix
// the compiler does not search, CGO_CFLAGS=-I<prefix>/include and
// CGO_LDFLAGS=-L<prefix>/lib.
//
// Errors are *Error values carrying tel's code and its one-line detail.
// Nothing in this package panics on a failure of the environment (no
// HOME, a read-only or full disk): the error is returned, and a host may
// ignore it; telemetry must never break its host.
package tel

/*
#cgo CFLAGS: -I${SRCDIR}/../../include -I${SRCDIR}/../../libqueue
#cgo !tel_installed LDFLAGS: -L${SRCDIR}/../../build
#cgo LDFLAGS: -l:libtel.a -Wl,-Bstatic -llmdb -lmsgpackc -Wl,-Bdynamic
#include <stdint.h>
#include <stdlib.h>
#include "tel.h"

int gotel_set_logging(tel_options *o, int on, uintptr_t handle);
*/
import "C"

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"sort"
	"sync"
	"unsafe"
)

// Code is a tel_error value.
type Code int

// The codes of tel.h; the list only grows.
const (
	OK          Code = 0
	Disabled    Code = 1
	ErrInvalid  Code = -1
	ErrLimit    Code = -2
	ErrNoState  Code = -3
	ErrIO       Code = -4
	ErrNoMem    Code = -5
	ErrCorrupt  Code = -6
	ErrBusy     Code = -7
	ErrConfig   Code = -8
	ErrState    Code = -9
	ErrNotFound Code = -10
)

// String is libtel's one-line description of the code.
func (c Code) String() string { return C.GoString(C.tel_strerror(C.int(c))) }

// Error is a failed tel call: the code and libtel's detail ("event name
// 'a b' has a space at byte 1").
type Error struct {
	Code   Code
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "tel: " + e.Code.String()
	}
	return "tel: " + e.Code.String() + ": " + e.Detail
}

// Environmental reports whether the machine or the user's files caused the
// failure (no usable state directory, I/O, memory, a damaged queue or
// telemetry.conf), rather than the caller's arguments.
func (e *Error) Environmental() bool {
	switch e.Code {
	case ErrNoState, ErrIO, ErrNoMem, ErrCorrupt, ErrBusy, ErrConfig, ErrNotFound:
		return true
	}
	return false
}

func invalid(format string, args ...any) error {
	return &Error{Code: ErrInvalid, Detail: fmt.Sprintf(format, args...)}
}

// call runs fn, which calls libtel, and turns a negative result into an
// *Error.  libtel keeps the detail per OS thread and a goroutine may move
// between threads, so the thread is held from the call to the read.
func call(fn func() C.int) (Code, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := Code(fn())
	if rc >= 0 {
		return rc, nil
	}
	return rc, &Error{Code: rc, Detail: C.GoString(C.tel_last_error())}
}

// Version is libtel's version string.
func Version() string { return C.GoString(C.tel_version()) }

// ------------------------------------------------------------ properties

// cmem is one C allocation holding everything a call passes to libtel.
type cmem struct {
	base unsafe.Pointer
	size uintptr
	used uintptr
}

func newCmem(size uintptr) *cmem {
	if size == 0 {
		size = 1
	}
	return &cmem{base: C.malloc(C.size_t(size)), size: size}
}

func (m *cmem) free() { C.free(m.base) }

func (m *cmem) alloc(n, align uintptr) unsafe.Pointer {
	m.used = (m.used + align - 1) &^ (align - 1)
	p := unsafe.Add(m.base, m.used)
	m.used += n
	return p
}

// str copies s, NUL-terminated; a NUL inside would silently cut it short.
func (m *cmem) str(what, s string) (*C.char, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return nil, invalid("%s holds a NUL byte", what)
		}
	}
	p := m.alloc(uintptr(len(s))+1, 1)
	b := unsafe.Slice((*byte)(p), len(s)+1)
	copy(b, s)
	b[len(s)] = 0
	return (*C.char)(p), nil
}

type prop struct {
	key string
	val any
}

// sortedProps orders a map's entries by key, so an event's properties
// are stored in the same order on every run.
func sortedProps(props map[string]any) []prop {
	out := make([]prop, 0, len(props))
	for k, v := range props {
		out = append(out, prop{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// cprops lays the properties out as a tel_prop array in C memory.  The
// caller frees the returned cmem after the call.
func cprops(props map[string]any) (*C.tel_prop, C.size_t, *cmem, error) {
	ps := sortedProps(props)
	size := uintptr(len(ps))*unsafe.Sizeof(C.tel_prop{}) + 8
	for _, p := range ps {
		size += uintptr(len(p.key)) + 1
		if s, ok := p.val.(string); ok {
			size += uintptr(len(s)) + 1
		} else if v := reflect.ValueOf(p.val); v.Kind() == reflect.String {
			size += uintptr(v.Len()) + 1
		}
	}
	m := newCmem(size)
	if len(ps) == 0 {
		return nil, 0, m, nil
	}
	arr := unsafe.Slice((*C.tel_prop)(m.alloc(uintptr(len(ps))*unsafe.Sizeof(C.tel_prop{}), 8)), len(ps))
	for i, p := range ps {
		key, err := m.str("property key", p.key)
		if err == nil {
			err = setValue(&arr[i], key, p.key, p.val, m)
		}
		if err != nil {
			m.free()
			return nil, 0, nil, err
		}
	}
	return &arr[0], C.size_t(len(ps)), m, nil
}

func setValue(p *C.tel_prop, key *C.char, name string, val any, m *cmem) error {
	p.key = key
	u := unsafe.Pointer(&p.v)
	switch x := val.(type) {
	case nil:
		p._type = C.TEL_T_NIL
	case bool:
		p._type = C.TEL_T_BOOL
		*(*C.int)(u) = 0
		if x {
			*(*C.int)(u) = 1
		}
	case string:
		s, err := m.str(fmt.Sprintf("property '%s'", name), x)
		if err != nil {
			return err
		}
		p._type = C.TEL_T_STR
		*(**C.char)(u) = s
	case float64:
		p._type = C.TEL_T_FLOAT
		*(*C.double)(u) = C.double(x)
	case float32:
		p._type = C.TEL_T_FLOAT
		*(*C.double)(u) = C.double(x)
	default:
		return setReflected(p, name, val, m)
	}
	return nil
}

// setReflected takes the integer kinds and named types of the basic kinds
// (type Mode string, time.Duration).
func setReflected(p *C.tel_prop, name string, val any, m *cmem) error {
	u := unsafe.Pointer(&p.v)
	v := reflect.ValueOf(val)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p._type = C.TEL_T_INT
		*(*C.int64_t)(u) = C.int64_t(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if v.Uint() > math.MaxInt64 {
			return invalid("property '%s' is an integer above 2^63-1", name)
		}
		p._type = C.TEL_T_INT
		*(*C.int64_t)(u) = C.int64_t(v.Uint())
	case reflect.Float32, reflect.Float64:
		p._type = C.TEL_T_FLOAT
		*(*C.double)(u) = C.double(v.Float())
	case reflect.Bool:
		return setValue(p, p.key, name, v.Bool(), m)
	case reflect.String:
		return setValue(p, p.key, name, v.String(), m)
	default:
		return invalid("property '%s' is a %T; tel records nil, bool, integers, floats and strings", name, val)
	}
	return nil
}

// ------------------------------------------------------------ one call

// oneCall keeps one-call emits of this process from opening a queue
// together: LMDB must not have one environment open twice in a process.
var oneCall sync.Mutex

// Emit records one event for app with no set-up.  It returns nil when the
// event was queued or telemetry is off, and an *Error otherwise.  A program
// recording several events should Open a handle instead.
func Emit(app, event string, props map[string]any) error {
	m := newCmem(uintptr(len(app)) + 1)
	defer m.free()
	capp, err := m.str("app", app)
	if err != nil {
		return err
	}
	return emitWith(event, props, func(ev *C.char, arr *C.tel_prop, n C.size_t) C.int {
		oneCall.Lock()
		defer oneCall.Unlock()
		return C.tel_emit(capp, ev, arr, n)
	})
}

// emitWith converts the event's name and properties to C for fn, which
// makes the libtel call.
func emitWith(event string, props map[string]any, fn func(*C.char, *C.tel_prop, C.size_t) C.int) error {
	m := newCmem(uintptr(len(event)) + 1)
	defer m.free()
	cev, err := m.str("event", event)
	if err != nil {
		return err
	}
	arr, n, pm, err := cprops(props)
	if err != nil {
		return err
	}
	defer pm.free()
	_, err = call(func() C.int { return fn(cev, arr, n) })
	return err
}

// withApp passes app as a C string to fn.
func withApp(app string, fn func(*C.char) C.int) (Code, error) {
	m := newCmem(uintptr(len(app)) + 1)
	defer m.free()
	capp, err := m.str("app", app)
	if err != nil {
		return ErrInvalid, err
	}
	return call(func() C.int { return fn(capp) })
}

// Enable records the user's choice to turn telemetry on (telemetry.conf).
func Enable(app string) error {
	_, err := withApp(app, func(a *C.char) C.int { return C.tel_set_enabled(a, 1) })
	return err
}

// Disable records the user's opt-out (telemetry.conf) and purges the queue.
func Disable(app string) error {
	_, err := withApp(app, func(a *C.char) C.int { return C.tel_set_enabled(a, 0) })
	return err
}

// Forget deletes the anonymous id and purges the queue; the next event
// gets a new id.
func Forget(app string) error {
	_, err := withApp(app, func(a *C.char) C.int { return C.tel_forget(a) })
	return err
}

// Sanitize returns s with paths, user and host names, e-mail and IP
// addresses, URL credentials and long tokens replaced by placeholders, as
// tel cleans error messages; for a host's own strings.
func Sanitize(s string) string {
	m := newCmem(uintptr(len(s))*9 + 64)
	defer m.free()
	in, err := m.str("text", s)
	if err != nil {
		return ""
	}
	size := uintptr(len(s))*8 + 64
	out := (*C.char)(m.alloc(size, 1))
	if _, err := call(func() C.int { return C.tel_sanitize(in, out, C.size_t(size)) }); err != nil {
		return ""
	}
	return C.GoString(out)
}

// Status is one line for a program's `telemetry status` command: on or
// off, what decided it, and the queue's depth.
func Status(app string) (string, error) {
	buf := (*C.char)(C.malloc(512))
	defer C.free(unsafe.Pointer(buf))
	_, err := withApp(app, func(a *C.char) C.int { return C.tel_status_line(a, buf, 512) })
	if err != nil {
		return "", err
	}
	return C.GoString(buf), nil
}
