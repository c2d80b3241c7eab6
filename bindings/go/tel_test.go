// SPDX-License-Identifier: MIT
package tel

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const app = "goapp"

// telBin is the tel command that reads back what was queued: TEL_BIN,
// else PATH, else the tree's build/bin/tel.
func telBin() string {
	if b := os.Getenv("TEL_BIN"); b != "" {
		return b
	}
	if b, err := exec.LookPath("tel"); err == nil {
		return b
	}
	return filepath.Join("..", "..", "build", "bin", "tel")
}

type event struct {
	Name    string                 `json:"name"`
	Exec    string                 `json:"exec"`
	Anon    string                 `json:"anon"`
	Props   map[string]interface{} `json:"props"`
	Context map[string]interface{} `json:"context"`
}

// home gives the test a private HOME and none of the caller's opt-outs.
func home(t *testing.T) string {
	t.Helper()
	h := t.TempDir()
	t.Setenv("HOME", h)
	for _, k := range []string{"XDG_STATE_HOME", "XDG_CONFIG_HOME", "DO_NOT_TRACK", "CI", "GOAPP_TELEMETRY_ENABLED",
		"GOAPP_TELEMETRY_DEBUG", "GOAPP_TELEMETRY_ENDPOINT"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	return h
}

func queued(t *testing.T) []event {
	t.Helper()
	out, err := exec.Command(telBin(), "show", "--app", app).Output()
	if err != nil {
		t.Fatalf("tel show: %v", err)
	}
	var evs []event
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e event
		d := json.NewDecoder(strings.NewReader(sc.Text()))
		d.UseNumber()
		if err := d.Decode(&e); err != nil {
			t.Fatalf("tel show line %q: %v", sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs
}

func names(evs []event) string {
	var n []string
	for _, e := range evs {
		n = append(n, e.Name)
	}
	return strings.Join(n, ",")
}

func code(err error) Code {
	var te *Error
	if errors.As(err, &te) {
		return te.Code
	}
	return OK
}

type mode string

func TestEmitRecordsTypedProperties(t *testing.T) {
	home(t)
	err := Emit(app, "deploy", map[string]any{"services": 3, "ratio": 2.5, "dry": false, "none": nil,
		"who": "équipe", "u8": uint8(7), "f32": float32(0.5), "mode": mode("fast"), "min": int64(-1 << 63)})
	if err != nil {
		t.Fatal(err)
	}
	evs := queued(t)
	if len(evs) != 1 {
		t.Fatalf("%d events queued", len(evs))
	}
	got, _ := json.Marshal(evs[0].Props)
	want := `{"dry":false,"f32":0.5,"min":-9223372036854775808,"mode":"fast","none":null,"ratio":2.5,"services":3,"u8":7,"who":"équipe"}`
	if string(got) != want {
		t.Fatalf("props %s, want %s", got, want)
	}
	if n, ok := evs[0].Props["services"].(json.Number); !ok || strings.ContainsAny(string(n), ".e") {
		t.Fatalf("services is not an integer: %#v", evs[0].Props["services"])
	}
}

func TestDoNotTrackRecordsNothing(t *testing.T) {
	h := home(t)
	t.Setenv("DO_NOT_TRACK", "1")
	if err := Emit(app, "deploy", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	tl, err := Open(app, nil)
	if err != nil || tl.Enabled() {
		t.Fatalf("open: %v, enabled %v", err, tl.Enabled())
	}
	_ = tl.Emit("deploy", nil)
	tl.Close()
	if _, err := os.Stat(filepath.Join(h, ".local/state", app)); !os.IsNotExist(err) {
		t.Fatalf("state directory exists: %v", err)
	}
	os.Unsetenv("DO_NOT_TRACK")
	if evs := queued(t); len(evs) != 0 {
		t.Fatalf("%d events queued", len(evs))
	}
}

func TestTheHostFlagTurnsOneRunOff(t *testing.T) {
	home(t)
	tl, err := Open(app, &Options{Enabled: Off, EnabledBy: SourceFlag})
	if err != nil {
		t.Fatal(err)
	}
	if tl.Enabled() {
		t.Fatal("enabled")
	}
	_ = tl.Emit("deploy", nil)
	tl.Close()
	if evs := queued(t); len(evs) != 0 {
		t.Fatalf("%d events queued", len(evs))
	}
}

func TestCallerMistakesAreErrorsWithCodeAndDetail(t *testing.T) {
	home(t)
	err := Emit(app, "bad name", nil)
	var te *Error
	if !errors.As(err, &te) || te.Code != ErrInvalid || !strings.Contains(te.Detail, "space") || te.Environmental() {
		t.Fatalf("bad name: %#v", err)
	}
	cases := map[string]map[string]any{
		"unsupported type": {"s": struct{}{}},
		"uint64 overflow":  {"n": uint64(1 << 63)},
		"NUL in a string":  {"s": "a\x00b"},
	}
	for what, props := range cases {
		if c := code(Emit(app, "e", props)); c != ErrInvalid {
			t.Errorf("%s: code %v", what, c)
		}
	}
	many := map[string]any{}
	for i := 0; i < 33; i++ {
		many[fmt.Sprint("k", i)] = i
	}
	if c := code(Emit(app, "e", many)); c != ErrLimit {
		t.Errorf("33 properties: code %v", c)
	}
	if c := code(Emit("Bad/App", "e", nil)); c != ErrInvalid {
		t.Errorf("bad app: code %v", c)
	}
	if evs := queued(t); len(evs) != 0 {
		t.Fatalf("%d events queued", len(evs))
	}
}

func TestAnUnusableHomeGivesAnEnvironmentalErrorAndNoPanic(t *testing.T) {
	f := filepath.Join(home(t), "file")
	os.WriteFile(f, nil, 0o600)
	t.Setenv("HOME", f)
	var te *Error
	if err := Emit(app, "deploy", nil); !errors.As(err, &te) || te.Code != ErrNoState || !te.Environmental() {
		t.Fatalf("emit: %#v", err)
	}
	tl, err := Open(app, nil)
	if code(err) != ErrNoState {
		t.Fatalf("open: %v", err)
	}
	if err := tl.Emit("deploy", map[string]any{"a": 1}); err != nil {
		t.Fatalf("emit on an unopened handle: %v", err)
	}
	var nilTel *Tel
	_ = nilTel.Emit("x", nil)
	_ = nilTel.Close()
	tl.Close()
}

func TestRunRecordsTheCommandAndItsBatch(t *testing.T) {
	home(t)
	tl, err := Open(app, &Options{AppVersion: "1.4.2"})
	if err != nil {
		t.Fatal(err)
	}
	err = tl.Run("deploy", []string{"force", "output"}, []string{"token"}, func() error {
		return tl.Batch(func(b *Batch) error {
			for i := 0; i < 3; i++ {
				if err := b.Emit("step", map[string]any{"i": i}); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	failed := errors.New("boom")
	if err := tl.Run("build", nil, nil, func() error { return failed }); err != failed {
		t.Fatalf("Run returned %v", err)
	}
	tl.Close()
	evs := queued(t)
	if got := names(evs); got != "command.started,step,step,step,command.exited,command.started,command.exited" {
		t.Fatalf("events %s", got)
	}
	if p := evs[0].Props; p["options"] != "force,output" || p["env_options"] != "token" {
		t.Fatalf("started %v", p)
	}
	if p := evs[4].Props; p["exit_code"] != json.Number("0") || p["success"] != true {
		t.Fatalf("exited %v", p)
	}
	if p := evs[6].Props; p["exit_code"] != json.Number("1") || p["success"] != false || p["error"] != nil {
		t.Fatalf("failed run %v", p)
	}
	if evs[0].Context["app_version"] != "1.4.2" || evs[0].Exec != evs[6].Exec {
		t.Fatalf("context %v, exec %s/%s", evs[0].Context, evs[0].Exec, evs[6].Exec)
	}
}

func TestMetricAndPrometheusRecordMetricEvents(t *testing.T) {
	home(t)
	tl, _ := Open(app, nil)
	if err := tl.Metric("jobs_total", 7.5, map[string]string{"queue": "default", "a": "b"}); err != nil {
		t.Fatal(err)
	}
	if err := tl.Prometheus([]byte("# TYPE up gauge\nup 1\n")); err != nil {
		t.Fatal(err)
	}
	err := tl.Prometheus([]byte("ok 1\nbad{ 2\n"))
	var te *Error
	if !errors.As(err, &te) || te.Code != ErrInvalid || !strings.Contains(te.Detail, "line 2") {
		t.Fatalf("malformed text: %v", err)
	}
	tl.Close()
	got, _ := json.Marshal([]map[string]any{queued(t)[0].Props, queued(t)[1].Props})
	want := `[{"label.a":"b","label.queue":"default","name":"jobs_total","value":7.5},{"kind":"gauge","name":"up","value":1}]`
	if string(got) != want {
		t.Fatalf("metrics %s", got)
	}
}

func TestNoticeAndUserControls(t *testing.T) {
	h := home(t)
	tl, _ := Open(app, &Options{RequireNotice: true})
	if !tl.NoticeDue() {
		t.Fatal("notice not due")
	}
	_ = tl.Emit("early", nil)
	if err := tl.NoticeShown(); err != nil || tl.NoticeDue() {
		t.Fatalf("shown: %v", err)
	}
	_ = tl.Emit("later", nil)
	tl.Close()
	if got := names(queued(t)); got != "later" {
		t.Fatalf("events %s", got)
	}
	if s, err := Status(app); err != nil || !strings.Contains(s, "1 event queued") {
		t.Fatalf("status %q %v", s, err)
	}
	cookie := filepath.Join(h, ".local/state", app, "telemetry-cookie")
	if err := Forget(app); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cookie); !os.IsNotExist(err) {
		t.Fatal("cookie kept")
	}
	if err := Disable(app); err != nil {
		t.Fatal(err)
	}
	_ = Emit(app, "off", nil)
	if s, _ := Status(app); !strings.Contains(s, "off") {
		t.Fatalf("status %q", s)
	}
	_ = Enable(app)
	_ = Emit(app, "on", nil)
	if got := names(queued(t)); got != "on" {
		t.Fatalf("events %s", got)
	}
	if _, err := Status("../x"); code(err) != ErrInvalid {
		t.Fatalf("bad app status: %v", err)
	}
}

func TestLogReceivesEachRecordedEvent(t *testing.T) {
	home(t)
	var lines []string
	tl, _ := Open(app, &Options{Log: func(l string) { lines = append(lines, l) }})
	_ = tl.Emit("seen", map[string]any{"k": "v"})
	tl.Close()
	if len(lines) != 1 || !strings.Contains(lines[0], `"name":"seen"`) {
		t.Fatalf("lines %q", lines)
	}
}

func TestSpawnSyncStartsOneSync(t *testing.T) {
	home(t)
	t.Setenv("GOAPP_TELEMETRY_ENDPOINT", "http://127.0.0.1:9/v1/batch")
	tl, _ := Open(app, nil)
	defer tl.Close()
	if ok, _ := tl.SpawnSync(0); ok {
		t.Fatal("started with nothing queued")
	}
	_ = tl.Emit("one", nil)
	if ok, err := tl.SpawnSync(0); !ok || err != nil {
		t.Fatalf("not started: %v", err)
	}
	if ok, _ := tl.SpawnSync(0); ok {
		t.Fatal("started twice within the interval")
	}
}

func TestGoroutinesShareOneHandle(t *testing.T) {
	home(t)
	tl, _ := Open(app, nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				if err := tl.Emit("g", map[string]any{"g": g, "i": i}); err != nil {
					t.Error(err)
				}
				if i%10 == 0 {
					_ = tl.Batch(func(b *Batch) error { return b.Emit("g.b", map[string]any{"g": g, "i": i}) })
				}
			}
		}(g)
	}
	wg.Wait()
	tl.Close()
	seen := map[string]bool{}
	for _, e := range queued(t) {
		seen[fmt.Sprint(e.Name, e.Props["g"], e.Props["i"])] = true
	}
	if len(seen) != 8*44 {
		t.Fatalf("%d distinct events, want %d", len(seen), 8*44)
	}
}

// rssAnonKiB is the resident anonymous memory: the heaps, not the queue's
// file-backed map.
func rssAnonKiB(t *testing.T) int {
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "RssAnon:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	t.Fatal("no RssAnon")
	return 0
}

func TestOneHundredThousandEventsOnOneHandleKeepTheResidentHeapFlat(t *testing.T) {
	home(t)
	tl, _ := Open(app, nil)
	props := map[string]any{"command": "deploy", "n": 1, "ratio": 0.5, "ok": true}
	emit := func(n int) {
		for k := 0; k < n/1000; k++ {
			_ = tl.Batch(func(b *Batch) error {
				for i := 0; i < 1000; i++ {
					if err := b.Emit("mem", props); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	emit(10000)
	before := rssAnonKiB(t)
	emit(90000)
	after := rssAnonKiB(t)
	tl.Close()
	t.Logf("RssAnon %d KiB after 10,000 events, %d KiB after 100,000", before, after)
	if n := len(queued(t)); n != 10000 {
		t.Fatalf("%d queued, want the cap of 10,000", n)
	}
	if after-before > 1024 {
		t.Fatalf("resident heap grew %d KiB from 10,000 to 100,000 events", after-before)
	}
}

func TestEventsForTheCollector(t *testing.T) {
	e2e := os.Getenv("TEL_E2E_HOME")
	if e2e == "" {
		t.Skip("only when TEL_E2E_HOME is set")
	}
	t.Setenv("HOME", e2e)
	if err := Emit("e2e-go", "e2e.typed", map[string]any{"count": 3, "ratio": 2.5, "ok": true, "none": nil,
		"who": "équipe"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DO_NOT_TRACK", "1")
	if err := Emit("e2e-go-dnt", "e2e.optedout", nil); err != nil {
		t.Fatal(err)
	}
}

func TestADeclaredVariableIsAnOptOutAndStatusNamesIt(t *testing.T) {
	home(t)
	env := []EnvVar{{Name: "GOAPP_NO_TELEMETRY", Meaning: EnvOffIfSet}}
	tl, _ := Open(app, &Options{Env: env})
	_ = tl.Emit("before", nil)
	tl.Close()
	t.Setenv("GOAPP_NO_TELEMETRY", "")
	tl, _ = Open(app, &Options{Env: env})
	if tl.Enabled() {
		t.Fatal("enabled with the declared opt-out set")
	}
	tl.Close()
	if s, _ := Status(app); !strings.Contains(s, "GOAPP_NO_TELEMETRY") {
		t.Fatalf("status %q", s)
	}
	os.Unsetenv("GOAPP_NO_TELEMETRY")
	if n := len(queued(t)); n != 0 {
		t.Fatalf("%d queued", n)
	}
	if _, err := Open(app, &Options{Env: []EnvVar{{Name: "BAD NAME", Meaning: EnvOffIfSet}}}); code(err) != ErrInvalid {
		t.Fatalf("bad name: %v", err)
	}
}

func TestDefaultOffRecordsNothingUntilTheUserOptsIn(t *testing.T) {
	home(t)
	tl, _ := Open(app, &Options{DefaultOff: true})
	_ = tl.Emit("quiet", nil)
	tl.Close()
	t.Setenv("GOAPP_TELEMETRY_ENABLED", "true")
	tl, _ = Open(app, &Options{DefaultOff: true})
	_ = tl.Emit("opted.in", nil)
	tl.Close()
	if got := names(queued(t)); got != "opted.in" {
		t.Fatalf("events %s", got)
	}
}

func TestInspectAndDebugQueueNothing(t *testing.T) {
	h := home(t)
	path := filepath.Join(h, "inspect.txt")
	tl, err := Open(app, &Options{Inspect: path})
	if err != nil {
		t.Fatal(err)
	}
	_ = tl.Emit("looked.at", nil)
	tl.Close()
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `"name":"looked.at"`) {
		t.Fatalf("inspect file %q", b)
	}
	var lines []string
	tl, _ = Open(app, &Options{Debug: true, Log: func(l string) { lines = append(lines, l) }})
	_ = tl.Emit("debugged", nil)
	tl.Close()
	if len(lines) != 1 || !strings.Contains(lines[0], "debugged") {
		t.Fatalf("debug lines %q", lines)
	}
	if n := len(queued(t)); n != 0 {
		t.Fatalf("%d queued", n)
	}
}

func TestSanitizedErrorDetailRecordsTheMessageWithoutThePath(t *testing.T) {
	home(t)
	tl, _ := Open(app, &Options{ErrorDetail: ErrorsSanitized})
	_ = tl.Run("read", nil, nil, func() error { return &os.PathError{Op: "open", Path: "/home/alice/secret.txt", Err: os.ErrNotExist} })
	tl.Close()
	p := queued(t)[1].Props
	if p["error_class"] != "PathError" || p["error"] == nil || strings.Contains(fmt.Sprint(p["error"]), "alice") {
		t.Fatalf("exited %v", p)
	}
	if s := Sanitize("cannot open /home/alice/secret.txt"); strings.Contains(s, "alice") || s == "" {
		t.Fatalf("Sanitize gave %q", s)
	}
}

func TestStructuredValuesKeepTheirShape(t *testing.T) {
	home(t)
	type option struct{ name string }
	err := Emit(app, "build", map[string]any{
		"config": map[string]any{"adapter": "@astrojs/vercel", "integrations": []string{"@astrojs/mdx", "@astrojs/rss"},
			"markdown": map[string]string{"syntaxHighlight": "shiki"}},
		"commandOptions": []map[string]any{{"name": "env", "asCli": true, "asEnv": false, "count": 2}},
		"empty":          []any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(queued(t)[0].Props)
	want := `{"commandOptions":[{"asCli":true,"asEnv":false,"count":2,"name":"env"}],"config":{"adapter":"@astrojs/vercel",` +
		`"integrations":["@astrojs/mdx","@astrojs/rss"],"markdown":{"syntaxHighlight":"shiki"}},"empty":[]}`
	if string(got) != want {
		t.Fatalf("props %s, want %s", got, want)
	}
	if c := code(Emit(app, "deep", map[string]any{"d": []any{[]any{[]any{[]any{[]any{1}}}}}})); c != ErrLimit {
		t.Fatalf("five levels: code %v", c)
	}
	self := []any{nil}
	self[0] = self
	if c := code(Emit(app, "self", map[string]any{"d": self})); c != ErrLimit {
		t.Fatalf("a slice holding itself: code %v", c)
	}
	if c := code(Emit(app, "s", map[string]any{"m": map[int]int{1: 2}, "o": option{}})); c != ErrInvalid {
		t.Fatalf("int-keyed map: code %v", c)
	}
}

func TestOfferingErasureMakesForgetLeaveAnErasureRequest(t *testing.T) {
	h := home(t)
	state := filepath.Join(h, ".local", "state", app)
	tl, err := Open(app, &Options{Erasure: On})
	if err != nil {
		t.Fatal(err)
	}
	_ = tl.Emit("one", nil)
	tl.Close()
	old, _ := os.ReadFile(filepath.Join(state, "telemetry-cookie"))
	id := strings.TrimSpace(string(old))
	if err := Forget(app); err != nil {
		t.Fatal(err)
	}
	req, err := os.ReadFile(filepath.Join(state, "telemetry-erasure", id))
	if err != nil || !strings.Contains(string(req), "\nerase 1 "+id+"\n") {
		t.Fatalf("request for %q: %q %v", id, req, err)
	}
	tl, _ = Open(app, &Options{Erasure: Off})
	_ = tl.Emit("two", nil)
	tl.Close()
	_ = Forget(app)
	if ents, _ := os.ReadDir(filepath.Join(state, "telemetry-erasure")); len(ents) != 1 {
		t.Fatalf("after the offer was taken back: %d requests", len(ents))
	}
}

func TestExecIDHandsTheRunToAChild(t *testing.T) {
	home(t)
	tl, _ := Open(app, nil)
	run := tl.ExecID()
	_ = tl.Emit("parent", nil)
	tl.Close()
	child, err := Open(app, &Options{ExecID: run})
	if err != nil || len(run) != 36 {
		t.Fatalf("exec id %q: %v", run, err)
	}
	_ = child.Emit("child.option", nil)
	child.Close()
	t.Setenv("GOAPP_TELEMETRY_EXEC_ID", run)
	_ = Emit(app, "child.env", nil)
	evs := queued(t)
	if len(evs) != 3 {
		t.Fatalf("events %s", names(evs))
	}
	// One run, recorded under an id derived from the token and the
	// anonymous id, never the token itself.
	for _, e := range evs {
		if e.Exec != evs[0].Exec || e.Exec == run {
			t.Fatalf("event %s has exec %s (first %s, token %s)", e.Name, e.Exec, evs[0].Exec, run)
		}
	}
	if _, err := Open(app, &Options{ExecID: "not-a-uuid"}); code(err) != ErrInvalid {
		t.Fatalf("bad id: %v", err)
	}
	off, _ := Open(app, &Options{Enabled: Off})
	defer off.Close()
	if id := off.ExecID(); id != "" {
		t.Fatalf("off: exec id %q", id)
	}
}

func TestProjectLinkableRecordsTheUnsaltedOriginHash(t *testing.T) {
	h := home(t)
	repo := filepath.Join(h, "repo")
	for _, args := range [][]string{{"init", "-q", repo}, {"-C", repo, "remote", "add", "origin", "https://github.com/o/r.git"}} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Skipf("git: %v %s", err, out)
		}
	}
	cwd, _ := os.Getwd()
	if err := os.Chdir(repo); err != nil {
		t.Fatal(err)
	}
	tl, _ := Open(app, &Options{ProjectLinkable: true})
	_ = tl.Emit("in.repo", nil)
	tl.Close()
	_ = os.Chdir(cwd)
	sum := sha256.Sum256([]byte("github.com/o/r"))
	if got := queued(t)[0].Context["project"]; got != hex.EncodeToString(sum[:]) {
		t.Fatalf("project %v", got)
	}
}

func TestSpansRecordTheirTree(t *testing.T) {
	home(t)
	tl, _ := Open(app, nil)
	outer, err := tl.Span("sync", nil)
	if err != nil || outer == nil {
		t.Fatalf("span: %v", err)
	}
	inner, _ := outer.Child("fetch")
	_ = inner.End(0)
	_ = inner.End(0)
	_ = outer.End(3)
	if _, err := tl.Span("bad name", nil); code(err) != ErrInvalid {
		t.Fatalf("bad name: %v", err)
	}
	dangling, _ := tl.Span("never.ended", nil)
	tl.Close()
	if err := dangling.End(0); err != nil {
		t.Fatal(err)
	}
	evs := queued(t)
	if got := names(evs); got != "span,span" {
		t.Fatalf("events %s", got)
	}
	f, s := evs[0].Props, evs[1].Props
	if f["name"] != "fetch" || f["parent"] != "sync" || f["parent_id"] != s["span_id"] || s["status"] != json.Number("3") {
		t.Fatalf("spans %v %v", f, s)
	}
}

func TestSpanLimitSaysErrLimitNotErrInvalid(t *testing.T) {
	home(t)
	tl, _ := Open(app, nil)
	defer tl.Close()
	for i := 0; i < 1024; i++ {
		if _, err := tl.Span("held", nil); err != nil {
			t.Fatalf("span %d: %v", i, err)
		}
	}
	s, err := tl.Span("one.more", nil)
	if s != nil || code(err) != ErrLimit {
		t.Fatalf("the 1025th open span: %v %v", s, err)
	}
	if s.End(0) != nil {
		t.Fatal("a nil span must end quietly")
	}
}

func TestSpanOfAnotherOrClosedHandleIsRefused(t *testing.T) {
	home(t)
	a, _ := Open(app, nil)
	b, _ := Open("goapp.other", nil)
	pa, _ := a.Span("parent", nil)
	a.Close()
	if s, err := b.Span("child", pa); s != nil || code(err) != ErrInvalid {
		t.Fatalf("a parent of a closed handle: %v %v", s, err)
	}
	b.Close()
}

func TestDaemonKeepsItsIdentityAcrossRestartsAndFlipsOff(t *testing.T) {
	h := home(t)
	state := filepath.Join(h, "var")
	opts := &Options{StateDir: state, InstallationID: "cluster-uid-1"}
	tl, _ := Open(app, opts)
	_ = tl.Emit("one", nil)
	if on, _ := tl.SetEnabled(false); on {
		t.Fatal("still on")
	}
	_ = tl.Emit("off", nil)
	if on, err := tl.SetEnabled(true); !on || err != nil {
		t.Fatalf("not back on: %v", err)
	}
	_ = tl.Emit("two", nil)
	tl.Close()
	tl, _ = Open(app, opts)
	_ = tl.Emit("three", nil)
	tl.Close()
	t.Setenv("GOAPP_TELEMETRY_STATE_DIR", state)
	evs := queued(t)
	if got := names(evs); got != "two,three" {
		t.Fatalf("events %s", got)
	}
	if evs[0].Anon == "" || evs[0].Anon != evs[1].Anon {
		t.Fatalf("a restarted daemon has anonymous ids %q and %q, want one", evs[0].Anon, evs[1].Anon)
	}
	if _, err := os.Stat(filepath.Join(h, ".local", "state", app, "telemetry-cookie")); !os.IsNotExist(err) {
		t.Fatalf("a cookie under HOME: %v", err)
	}
}
