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

// item is one tel_prop before it is laid out in C memory: a property, an
// array element (no key) or a map entry, in the flat pre-order of tel.h.
type item struct {
	key    string
	hasKey bool
	typ    C.tel_type
	i      int64
	f      float64
	s      string
}

// maxWalk stops a value that holds itself; libtel refuses far less deep.
const maxWalk = 16

// sortedKeys orders a map's keys, so an event's properties are stored in
// the same order on every run.
func sortedKeys(m reflect.Value) []string {
	keys := make([]string, 0, m.Len())
	for _, k := range m.MapKeys() {
		keys = append(keys, k.String())
	}
	sort.Strings(keys)
	return keys
}

// flatten appends val, and for an array or map its children, to items.
func flatten(items []item, key string, hasKey bool, name string, val any, depth int) ([]item, error) {
	it := item{key: key, hasKey: hasKey}
	switch x := val.(type) {
	case nil:
		it.typ = C.TEL_T_NIL
	case bool:
		it.typ = C.TEL_T_BOOL
		if x {
			it.i = 1
		}
	case string:
		it.typ, it.s = C.TEL_T_STR, x
	case float64:
		it.typ, it.f = C.TEL_T_FLOAT, x
	case int:
		it.typ, it.i = C.TEL_T_INT, int64(x)
	default:
		return flattenReflected(items, it, name, val, depth)
	}
	return append(items, it), nil
}

// flattenReflected takes the other integer and float types, named types of
// the basic kinds (type Mode string, time.Duration), slices, arrays and
// maps with string keys.
func flattenReflected(items []item, it item, name string, val any, depth int) ([]item, error) {
	v := reflect.ValueOf(val)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		it.typ, it.i = C.TEL_T_INT, v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if v.Uint() > math.MaxInt64 {
			return nil, invalid("property '%s' holds an integer above 2^63-1", name)
		}
		it.typ, it.i = C.TEL_T_INT, int64(v.Uint())
	case reflect.Float32, reflect.Float64:
		it.typ, it.f = C.TEL_T_FLOAT, v.Float()
	case reflect.Bool:
		return flatten(items, it.key, it.hasKey, name, v.Bool(), depth)
	case reflect.String:
		return flatten(items, it.key, it.hasKey, name, v.String(), depth)
	case reflect.Slice, reflect.Array, reflect.Map:
		return flattenNested(items, it, name, v, depth)
	default:
		return nil, invalid("property '%s' holds a %T; tel records nil, booleans, numbers, strings, "+
			"and slices and string-keyed maps of them", name, val)
	}
	return append(items, it), nil
}

func flattenNested(items []item, it item, name string, v reflect.Value, depth int) ([]item, error) {
	if depth >= maxWalk {
		return nil, &Error{Code: ErrLimit, Detail: fmt.Sprintf("property '%s' nests deeper than tel allows", name)}
	}
	var err error
	if v.Kind() == reflect.Map {
		if v.Type().Key().Kind() != reflect.String {
			return nil, invalid("property '%s' is a map whose keys are not strings", name)
		}
		it.typ, it.i = C.TEL_T_MAP, int64(v.Len())
		items = append(items, it)
		for _, k := range sortedKeys(v) {
			if items, err = flatten(items, k, true, name, v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())).Interface(), depth+1); err != nil {
				return nil, err
			}
		}
		return items, nil
	}
	it.typ, it.i = C.TEL_T_ARRAY, int64(v.Len())
	items = append(items, it)
	for n := 0; n < v.Len(); n++ {
		if items, err = flatten(items, "", false, name, v.Index(n).Interface(), depth+1); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// cprops lays the properties out as a tel_prop array in C memory.  The
// caller frees the returned cmem after the call.
func cprops(props map[string]any) (*C.tel_prop, C.size_t, *cmem, error) {
	var items []item
	var err error
	for _, k := range sortedKeys(reflect.ValueOf(props)) {
		if items, err = flatten(items, k, true, k, props[k], 0); err != nil {
			return nil, 0, nil, err
		}
	}
	size := uintptr(len(items))*unsafe.Sizeof(C.tel_prop{}) + 8
	for _, it := range items {
		size += uintptr(len(it.key)+len(it.s)) + 2
	}
	m := newCmem(size)
	if len(items) == 0 {
		return nil, 0, m, nil
	}
	arr := unsafe.Slice((*C.tel_prop)(m.alloc(uintptr(len(items))*unsafe.Sizeof(C.tel_prop{}), 8)), len(items))
	for n, it := range items {
		if err = setItem(&arr[n], it, m); err != nil {
			m.free()
			return nil, 0, nil, err
		}
	}
	return &arr[0], C.size_t(len(items)), m, nil
}

func setItem(p *C.tel_prop, it item, m *cmem) error {
	var err error
	p.key = nil
	if it.hasKey {
		if p.key, err = m.str("property key", it.key); err != nil {
			return err
		}
	}
	p._type = it.typ
	u := unsafe.Pointer(&p.v)
	switch it.typ {
	case C.TEL_T_BOOL:
		*(*C.int)(u) = C.int(it.i)
	case C.TEL_T_FLOAT:
		*(*C.double)(u) = C.double(it.f)
	case C.TEL_T_STR:
		s, err := m.str(fmt.Sprintf("property '%s'", it.key), it.s)
		if err != nil {
			return err
		}
		*(**C.char)(u) = s
	default:
		*(*C.int64_t)(u) = C.int64_t(it.i)
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
// gets a new id.  When the host offered erasure (Options.Erasure), it
// first leaves a request, sent by tel-sync, to erase the old id's events
// at the collector.
func Forget(app string) error {
	_, err := withApp(app, func(a *C.char) C.int { return C.tel_forget(a) })
	return err
}

// Sanitize returns s with quoted text, URLs, option and credential
// values, paths (also with blanks), user and host names, e-mail and IP
// addresses and long tokens replaced by placeholders, as tel cleans error
// messages (tel_sanitize(3) lists the rules); for a host's own strings.
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
