// SPDX-License-Identifier: MIT
package tel

/*
#include <stdint.h>
#include <stdlib.h>
#include "tel.h"

int gotel_set_logging(tel_options *o, int on, uintptr_t handle);
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"sort"
	"sync"
	"time"
	"unsafe"
)

// Switch is a host's on/off setting that may also be left unsaid: for
// Enabled, whether telemetry is on; for Erasure, whether it is offered.
type Switch int

const (
	// Default leaves it to the user and tel's built-in default (on).
	Default Switch = iota
	// On says the host defaults to on; any opt-out of the user still wins.
	On
	// Off turns telemetry off for this run.
	Off
)

// Source says where a host's Enabled setting comes from.
type Source int

const (
	// SourceHost is the program's own default.
	SourceHost Source = 1
	// SourceFlag is an explicit command-line flag such as --no-telemetry.
	SourceFlag Source = 4
)

// EnvMeaning is what a variable of the host's own, declared in
// Options.Env, means.
type EnvMeaning int

const (
	// EnvOffIfTrue: NAME=1 is the user's opt-out (ASTRO_TELEMETRY_DISABLED=1).
	EnvOffIfTrue EnvMeaning = 1
	// EnvOffIfSet: NAME set at all is the user's opt-out (CQ_NO_TELEMETRY).
	EnvOffIfSet EnvMeaning = 2
	// EnvOnOff: NAME=1 is the user's on, NAME=0 the user's opt-out (WERF_TELEMETRY).
	EnvOnOff EnvMeaning = 3
	// EnvDebugIfContains: NAME's list holds Word: debug for this run (DEBUG=astro:telemetry).
	EnvDebugIfContains EnvMeaning = 4
	// EnvLogFile: NAME is the path of an audit log file (WERF_TELEMETRY_LOG_FILE).
	EnvLogFile EnvMeaning = 5
	// EnvDetailedErrors: NAME set sends sanitised error messages (CQ_DEBUG_TELEMETRY).
	EnvDetailedErrors EnvMeaning = 6
)

// EnvVar declares one of the host's own environment variables.  Its value
// is read by every tel program from its own environment, never recorded.
type EnvVar struct {
	Name    string
	Meaning EnvMeaning
	Word    string // for EnvDebugIfContains
}

// ErrorDetail is how much of an error CommandExited records.
type ErrorDetail int

const (
	// ErrorsClass records the error's class only (the default).
	ErrorsClass ErrorDetail = 0
	// ErrorsSanitized records the class and the message, through Sanitize.
	ErrorsSanitized ErrorDetail = 1
)

// Options are the host's settings for Open; the zero value is fine.
type Options struct {
	AppVersion string
	Endpoint   string // the host's collector URL, recorded for tel-sync
	Token      string // the host's bearer token, recorded for tel-sync
	Enabled    Switch
	EnabledBy  Source // SourceHost unless set
	// Logging audits every recorded event: through Log when set, else on stderr.
	Logging bool
	Log     func(line string)
	// Queue caps; zero keeps the defaults (10,000 events, 4 MiB, 30 days).
	MaxEvents, MaxBytes uint64
	MaxAge              time.Duration
	ProjectSalt         string // opt into the salted project id
	RequireNotice       bool   // record nothing until NoticeShown was called once
	// DefaultOff makes telemetry opt-in: off until the user turns it on.
	DefaultOff bool
	// Env declares the host's own environment variables and their meaning.
	Env []EnvVar
	// Inspect writes this run's events to the named file instead of queueing them.
	Inspect string
	// Debug logs this run's events (through Log, else stderr) and records nothing.
	Debug       bool
	ErrorDetail ErrorDetail
	// Erasure On offers erasure: a forget (tel forget, Forget) then leaves
	// a request that tel-sync sends so that the collector deletes what it
	// holds of the old anonymous id.  Off takes an earlier offer back.
	// Default says nothing: like DefaultOff and Env it is recorded beside
	// the queue, as not offered, when this run declares any of them.
	Erasure Switch
	// ProjectLinkable opts into the unsalted project id: sha256 of the
	// normalised git origin URL, the same in every product that uses tel.
	ProjectLinkable bool
	// ExecID joins this run to one begun by another process (UUID text);
	// <APP>_TELEMETRY_EXEC_ID in the environment wins.
	ExecID string
	// StateDir is an absolute state directory, for a daemon without HOME.
	StateDir string
	// InstallationID is an id the host keeps (a cluster's UID): the
	// anonymous id becomes a hash of it and the app name.
	InstallationID string
}

// Tel is a handle on one app's queue.  It is safe for concurrent use by
// several goroutines: calls take turns.  Keep one handle per app per
// process.  Every method of a nil or closed *Tel records nothing and
// returns nil.
type Tel struct {
	mu   sync.Mutex
	h    *C.tel
	log  cgo.Handle
	open Code
}

//export gotelLog
func gotelLog(handle C.uintptr_t, line *C.char) {
	fn, ok := cgo.Handle(handle).Value().(func(string))
	if ok {
		fn(C.GoString(line))
	}
}

// configure applies opts to o; on failure the caller frees o.
func (t *Tel) configure(o *C.tel_options, opts *Options) error {
	size := uintptr(len(opts.AppVersion)+len(opts.Endpoint)+len(opts.Token)+len(opts.ProjectSalt)+len(opts.Inspect)+
		len(opts.ExecID)+len(opts.StateDir)+len(opts.InstallationID)) + 8
	for _, d := range opts.Env {
		size += uintptr(len(d.Name)+len(d.Word)) + 2
	}
	m := newCmem(size)
	defer m.free()
	set := func(what, val string, fn func(*C.char) C.int) error {
		if val == "" {
			return nil
		}
		s, err := m.str(what, val)
		if err == nil {
			_, err = call(func() C.int { return fn(s) })
		}
		return err
	}
	errs := []error{
		set("app version", opts.AppVersion, func(s *C.char) C.int { return C.tel_options_set_app_version(o, s) }),
		set("endpoint", opts.Endpoint, func(s *C.char) C.int { return C.tel_options_set_endpoint(o, s) }),
		set("token", opts.Token, func(s *C.char) C.int { return C.tel_options_set_token(o, s) }),
		set("project salt", opts.ProjectSalt, func(s *C.char) C.int { return C.tel_options_set_project_salt(o, s) }),
	}
	if opts.Enabled != Default {
		src := opts.EnabledBy
		if src == 0 {
			src = SourceHost
		}
		on := C.int(0)
		if opts.Enabled == On {
			on = 1
		}
		_, err := call(func() C.int { return C.tel_options_set_enabled(o, on, C.tel_source(src)) })
		errs = append(errs, err)
	}
	if opts.Logging || opts.Log != nil {
		var h C.uintptr_t
		if opts.Log != nil {
			t.log = cgo.NewHandle(opts.Log)
			h = C.uintptr_t(t.log)
		}
		errs = append(errs, codeErr(call(func() C.int { return C.gotel_set_logging(o, 1, h) })))
	}
	if opts.MaxEvents != 0 || opts.MaxBytes != 0 || opts.MaxAge != 0 {
		age := C.uint64_t(opts.MaxAge / time.Second)
		errs = append(errs, codeErr(call(func() C.int {
			return C.tel_options_set_caps(o, C.uint64_t(opts.MaxEvents), C.uint64_t(opts.MaxBytes), age)
		})))
	}
	if opts.RequireNotice {
		errs = append(errs, codeErr(call(func() C.int { return C.tel_options_set_require_notice(o, 1) })))
	}
	errs = append(errs, set("inspect path", opts.Inspect, func(s *C.char) C.int { return C.tel_options_set_inspect(o, s) }),
		knobs(o, opts, m),
		set("execution id", opts.ExecID, func(s *C.char) C.int { return C.tel_options_set_exec_id(o, s) }),
		set("state directory", opts.StateDir, func(s *C.char) C.int { return C.tel_options_set_state_dir(o, s) }),
		set("installation id", opts.InstallationID, func(s *C.char) C.int { return C.tel_options_set_installation_id(o, s) }))
	if opts.ProjectLinkable {
		errs = append(errs, codeErr(call(func() C.int { return C.tel_options_set_project_linkable(o, 1) })))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func codeErr(_ Code, err error) error { return err }

// knobs applies the host's declared variables, default, debug, error
// detail and erasure offer to o.
func knobs(o *C.tel_options, opts *Options, m *cmem) error {
	for _, d := range opts.Env {
		name, err := m.str("variable name", d.Name)
		if err != nil {
			return err
		}
		var word *C.char
		if d.Word != "" {
			if word, err = m.str("word", d.Word); err != nil {
				return err
			}
		}
		if _, err = call(func() C.int { return C.tel_options_declare_env(o, name, C.tel_env_meaning(d.Meaning), word) }); err != nil {
			return err
		}
	}
	var err error
	if opts.DefaultOff {
		_, err = call(func() C.int { return C.tel_options_set_default_enabled(o, 0) })
	}
	if err == nil && opts.Debug {
		_, err = call(func() C.int { return C.tel_options_set_debug(o, 1) })
	}
	if err == nil && opts.ErrorDetail != ErrorsClass {
		_, err = call(func() C.int { return C.tel_options_set_error_detail(o, C.tel_error_detail(opts.ErrorDetail)) })
	}
	if err == nil && opts.Erasure != Default {
		on := C.int(0)
		if opts.Erasure == On {
			on = 1
		}
		_, err = call(func() C.int { return C.tel_options_set_erasure(o, on) })
	}
	return err
}

// Open opens a handle for app.  The returned *Tel is always usable: when
// the error is an environmental one (no usable state directory...) or
// telemetry is off, it records nothing.  A caller's mistake (a bad app
// name or option) returns an error and a handle that records nothing.
func Open(app string, opts *Options) (*Tel, error) {
	if opts == nil {
		opts = &Options{}
	}
	t := &Tel{open: ErrState}
	var o *C.tel_options
	if _, err := withApp(app, func(a *C.char) C.int {
		if o = C.tel_options_new(a); o == nil {
			return C.int(ErrInvalid)
		}
		return 0
	}); err != nil {
		return t, err
	}
	if err := t.configure(o, opts); err != nil {
		C.tel_options_free(o)
		t.release()
		return t, err
	}
	var h *C.tel
	rc, err := call(func() C.int { return C.tel_open(&h, o) })
	t.h, t.open = h, rc
	if t.h != nil {
		runtime.SetFinalizer(t, (*Tel).Close)
	} else {
		t.release()
	}
	return t, err
}

func (t *Tel) release() {
	if t.log != 0 {
		t.log.Delete()
		t.log = 0
	}
}

// Close commits an open batch and releases the handle.
func (t *Tel) Close() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.h != nil {
		C.tel_close(t.h)
		t.h = nil
		runtime.SetFinalizer(t, nil)
	}
	t.release()
	return nil
}

// Enabled reports whether the handle records events.
func (t *Tel) Enabled() bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.h != nil && C.tel_enabled(t.h) != 0
}

// do runs fn on the live handle under the lock; a nil or closed handle
// does nothing.
func (t *Tel) do(fn func(h *C.tel) C.int) (Code, error) {
	if t == nil {
		return Disabled, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.h == nil {
		return Disabled, nil
	}
	return call(func() C.int { return fn(t.h) })
}

// Emit records one event; outside a batch it is durable on return.
// Returns nil when queued or when telemetry is off.
func (t *Tel) Emit(event string, props map[string]any) error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.emitLocked(event, props)
}

func (t *Tel) emitLocked(event string, props map[string]any) error {
	if t.h == nil {
		return nil
	}
	return emitWith(event, props, func(ev *C.char, arr *C.tel_prop, n C.size_t) C.int {
		return C.tel_emit_event(t.h, ev, arr, n)
	})
}

// Batch is the handle inside Tel.Batch; its Emit buffers events.
type Batch struct{ t *Tel }

// Emit buffers one event of the batch.
func (b *Batch) Emit(event string, props map[string]any) error {
	return b.t.emitLocked(event, props)
}

// Batch runs fn with the handle held, buffering what fn emits through b,
// and writes it all in one transaction when fn returns (whatever it
// returns).  fn must emit through b: calling t's own methods inside fn
// would wait for itself.
func (t *Tel) Batch(fn func(b *Batch) error) error {
	if t == nil {
		return fn(&Batch{t: &Tel{}})
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.h == nil {
		return fn(&Batch{t: t})
	}
	if _, err := call(func() C.int { return C.tel_batch_begin(t.h) }); err != nil {
		return err
	}
	ferr := fn(&Batch{t: t})
	_, err := call(func() C.int { return C.tel_batch_commit(t.h) })
	if ferr != nil {
		return ferr
	}
	return err
}

// Metric records one sample of a metric with its labels.
func (t *Tel) Metric(name string, value float64, labels map[string]string) error {
	names := make([]string, 0, len(labels))
	size := uintptr(len(name)) + 1 + uintptr(2*len(labels)+1)*unsafe.Sizeof(uintptr(0))
	for k, v := range labels {
		names = append(names, k)
		size += uintptr(len(k)+len(v)) + 2
	}
	sort.Strings(names)
	m := newCmem(size)
	defer m.free()
	pairs := unsafe.Slice((**C.char)(m.alloc(uintptr(2*len(names)+1)*unsafe.Sizeof(uintptr(0)), 8)), 2*len(names)+1)
	var err error
	for i, k := range names {
		if pairs[2*i], err = m.str("label name", k); err != nil {
			return err
		}
		if pairs[2*i+1], err = m.str(fmt.Sprintf("label '%s'", k), labels[k]); err != nil {
			return err
		}
	}
	cname, err := m.str("metric name", name)
	if err != nil {
		return err
	}
	_, err = t.do(func(h *C.tel) C.int {
		return C.tel_emit_metric(h, cname, C.double(value), &pairs[0], C.size_t(len(names)))
	})
	return err
}

// Prometheus records every sample of a Prometheus text exposition, all or
// none; a malformed line is an ErrInvalid naming the line.
func (t *Tel) Prometheus(text []byte) error {
	m := newCmem(uintptr(len(text)))
	defer m.free()
	p := m.alloc(uintptr(len(text)), 1)
	copy(unsafe.Slice((*byte)(p), len(text)), text)
	_, err := t.do(func(h *C.tel) C.int { return C.tel_emit_prometheus(h, (*C.char)(p), C.size_t(len(text))) })
	return err
}

// CommandStarted records command.started with the names, never the
// values, of the options used: options given on the command line,
// envOptions through the environment.  It starts the duration clock.
func (t *Tel) CommandStarted(command string, options, envOptions []string) error {
	n := len(options) + len(envOptions)
	size := uintptr(len(command)) + 1 + uintptr(n+1)*unsafe.Sizeof(C.tel_option_use{})
	for _, s := range append(append([]string{}, options...), envOptions...) {
		size += uintptr(len(s)) + 1
	}
	m := newCmem(size + 8)
	defer m.free()
	uses := unsafe.Slice((*C.tel_option_use)(m.alloc(uintptr(n+1)*unsafe.Sizeof(C.tel_option_use{}), 8)), n+1)
	for i, name := range append(append([]string{}, options...), envOptions...) {
		s, err := m.str("option name", name)
		if err != nil {
			return err
		}
		uses[i].name = s
		uses[i].from_env = 0
		if i >= len(options) {
			uses[i].from_env = 1
		}
	}
	ccmd, err := m.str("command", command)
	if err != nil {
		return err
	}
	_, err = t.do(func(h *C.tel) C.int { return C.tel_command_started(h, ccmd, &uses[0], C.size_t(n)) })
	return err
}

// CommandExited records command.exited with the exit code and the
// duration since CommandStarted.  errClass and errMessage may be empty;
// they are recorded only under debug telemetry, the message sanitised.
func (t *Tel) CommandExited(exitCode int, errClass, errMessage string) error {
	m := newCmem(uintptr(len(errClass)+len(errMessage)) + 2)
	defer m.free()
	var ccls, cmsg *C.char
	var err error
	if errClass != "" {
		if ccls, err = m.str("error class", errClass); err != nil {
			return err
		}
	}
	if errMessage != "" {
		if cmsg, err = m.str("error message", errMessage); err != nil {
			return err
		}
	}
	_, err = t.do(func(h *C.tel) C.int { return C.tel_command_exited(h, C.int(exitCode), ccls, cmsg) })
	return err
}

// Run records command.started, calls fn, and records command.exited:
// exit code 0 when fn returns nil, else 1 with the error's type and
// message (kept only under debug telemetry).  It returns fn's error.
func (t *Tel) Run(command string, options, envOptions []string, fn func() error) error {
	_ = t.CommandStarted(command, options, envOptions)
	err := fn()
	if err == nil {
		_ = t.CommandExited(0, "", "")
	} else {
		_ = t.CommandExited(1, errorClass(err), err.Error())
	}
	return err
}

// errorClass names an error's type as an option-like name ("PathError").
func errorClass(err error) string {
	name := fmt.Sprintf("%T", err)
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' || name[i] == '*' {
			return name[i+1:]
		}
	}
	return name
}

// SpawnSync starts a detached tel-sync when something is queued and none
// was started within minInterval (0: ten minutes); true when one was.
func (t *Tel) SpawnSync(minInterval time.Duration) (bool, error) {
	rc, err := t.do(func(h *C.tel) C.int { return C.tel_spawn_sync(h, C.unsigned(minInterval/time.Second)) })
	return err == nil && rc == OK, err
}

// ExecID is the run's execution id (UUID text), to hand to a child
// process through <APP>_TELEMETRY_EXEC_ID; "" when telemetry is off.
func (t *Tel) ExecID() string {
	if t == nil {
		return ""
	}
	var buf [37]C.char
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.h == nil || C.tel_exec_id(t.h, &buf[0]) != 0 {
		return ""
	}
	return C.GoString(&buf[0])
}

// SetEnabled switches the open handle off (an opt-out: what was queued is
// deleted) or back on, for a long-running host that learns of its user's
// choice while running.  It reports whether the handle records afterwards.
func (t *Tel) SetEnabled(on bool) (bool, error) {
	v := C.int(0)
	if on {
		v = 1
	}
	rc, err := t.do(func(h *C.tel) C.int { return C.tel_handle_set_enabled(h, v) })
	return err == nil && rc == OK, err
}

// Span is one timed part of an operation, recorded as a "span" event with
// its duration and parent when it ends.  A nil *Span (telemetry off, or a
// nil or closed *Tel) does nothing.
type Span struct {
	t *Tel
	s *C.tel_span
}

// Span starts timing name inside parent (nil: at the top level).  The
// span belongs to the handle: Close frees the spans still open, unrecorded.
// On failure the *Span is nil (and does nothing) and the error carries
// tel's code: ErrInvalid for a bad name or a parent of another handle,
// ErrLimit when 1024 spans of the handle are open already, ErrNoMem.
func (t *Tel) Span(name string, parent *Span) (*Span, error) {
	if t == nil {
		return nil, nil
	}
	m := newCmem(uintptr(len(name)) + 1)
	defer m.free()
	cname, err := m.str("span name", name)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.h == nil {
		return nil, nil
	}
	var p *C.tel_span
	if parent != nil {
		if parent.t != t {
			return nil, invalid("the parent span belongs to another handle")
		}
		p = parent.s
	}
	var s *C.tel_span
	if _, err = call(func() C.int { return C.tel_span_start(&s, t.h, cname, p) }); s == nil {
		return nil, err
	}
	return &Span{t: t, s: s}, nil
}

// Child starts a span inside this one.
func (s *Span) Child(name string) (*Span, error) {
	if s == nil {
		return nil, nil
	}
	return s.t.Span(name, s)
}

// End records the span with the host's outcome code (0: success); later
// calls, and calls after the handle was closed, do nothing.
func (s *Span) End(status int) error {
	if s == nil || s.s == nil {
		return nil
	}
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	cs := s.s
	s.s = nil
	if s.t.h == nil {
		return nil
	}
	_, err := call(func() C.int { return C.tel_span_end(cs, C.int(status)) })
	return err
}

// NoticeDue reports whether the first-run notice should be printed; the
// host prints it on stderr, then calls NoticeShown.
func (t *Tel) NoticeDue() bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.h != nil && C.tel_notice_due(t.h) != 0
}

// NoticeShown records that the first-run notice was shown.
func (t *Tel) NoticeShown() error {
	_, err := t.do(func(h *C.tel) C.int { return C.tel_notice_shown(h) })
	return err
}
