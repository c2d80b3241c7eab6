// SPDX-License-Identifier: MIT
package tel_test

import (
	"errors"
	"fmt"
	"os"

	"tel.dev/tel"
)

// The one call: a program recording a single event needs nothing else.
func ExampleEmit() {
	_ = tel.Emit("mycli", "deploy", map[string]any{"services": 3, "strategy": "rolling", "dry_run": false})
}

// A command-line program: the first-run notice, the command's lifecycle
// events with the names of the options used, and a detached tel-sync as
// it finishes.
func ExampleOpen() {
	noTelemetry := false // the program's own --no-telemetry flag
	opts := &tel.Options{AppVersion: "1.4.2"}
	if noTelemetry {
		opts.Enabled, opts.EnabledBy = tel.Off, tel.SourceFlag
	}
	t, _ := tel.Open("mycli", opts) // usable even on error: it then records nothing
	defer t.Close()
	if t.NoticeDue() {
		fmt.Fprintln(os.Stderr, "mycli collects anonymous usage data; `mycli telemetry disable` turns it off.")
		_ = t.NoticeShown()
	}
	err := t.Run("deploy", []string{"force"}, nil, func() error {
		return nil // the command's work
	})
	_, _ = t.SpawnSync(0)
	if err != nil {
		os.Exit(1)
	}
}

// Many events at once, written in one transaction.
func ExampleTel_Batch() {
	t, _ := tel.Open("mycli", nil)
	defer t.Close()
	_ = t.Batch(func(b *tel.Batch) error {
		for i := 0; i < 100; i++ {
			if err := b.Emit("item.processed", map[string]any{"index": i}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Metrics, one sample or a Prometheus text exposition.
func ExampleTel_Prometheus() {
	t, _ := tel.Open("operator", nil)
	defer t.Close()
	_ = t.Metric("reconciles_total", 12, map[string]string{"controller": "tenant"})
	_ = t.Prometheus([]byte("# TYPE tenants gauge\ntenants 4\n"))
}

// Errors carry tel's code and detail; an environmental one (no usable
// HOME, a full disk) is safe to ignore.
func ExampleError() {
	err := tel.Emit("mycli", "bad name", nil)
	var te *tel.Error
	if errors.As(err, &te) && !te.Environmental() {
		fmt.Println(te.Code == tel.ErrInvalid, te.Detail)
	}
	// Output: true event name has a space at byte 3
}

// Structured values: slices and string-keyed maps become tel's arrays and
// maps, as a product's telemetry page shows them.
func ExampleEmit_structured() {
	_ = tel.Emit("astro", "config", map[string]any{"config": map[string]any{
		"adapter":      "@astrojs/vercel",
		"integrations": []string{"@astrojs/mdx", "@astrojs/rss"},
		"markdown":     map[string]string{"syntaxHighlight": "shiki"},
	}})
}

// Spans time the parts of an operation; each End records one "span"
// event with its duration, its parent and the status.
func ExampleTel_Span() {
	t, _ := tel.Open("mycli", nil)
	defer t.Close()
	sync, _ := t.Span("sync", nil) // nil when telemetry is off: its methods do nothing
	fetch, _ := sync.Child("fetch")
	_ = fetch.End(0)
	_ = sync.End(0)
}

// A run across processes: the child joins the parent's run through the
// environment.
func ExampleTel_ExecID() {
	t, _ := tel.Open("mycli", nil)
	defer t.Close()
	if id := t.ExecID(); id != "" {
		_ = os.Setenv("MYCLI_TELEMETRY_EXEC_ID", id) // before starting the child
	}
}

// A daemon without HOME: its own state directory, a lasting identity from
// the cluster's UID, and the config map's switch applied to the open handle.
func ExampleTel_SetEnabled() {
	t, _ := tel.Open("operator", &tel.Options{StateDir: "/var/lib/operator/telemetry", InstallationID: "cluster-uid"})
	defer t.Close()
	configMapSaysOn := false
	_, _ = t.SetEnabled(configMapSaysOn) // off purges what was queued
}
