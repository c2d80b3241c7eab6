// SPDX-License-Identifier: MIT
package tel

import (
	"os"
	"os/exec"
	"testing"
)

// The benchmarks bench/bindings.sh reports: one durable event in process,
// through a handle and through the one call, against `tel emit` run as a
// subprocess (TEL_BIN, else PATH) for the same event.

var benchProps = map[string]any{"command": "deploy", "services": 3, "ratio": 0.5, "dry_run": false}

func BenchmarkHandleEmit(b *testing.B) {
	t, err := Open("bench-go", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := t.Emit("deploy.finished", benchProps); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOneCallEmit(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if err := Emit("bench-go", "deploy.finished", benchProps); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTelEmitSubprocess(b *testing.B) {
	bin := os.Getenv("TEL_BIN")
	if bin == "" {
		bin = "tel"
	}
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "emit", "--app", "bench-go", "deploy.finished",
			"command=deploy", "services=3", "ratio=0.5", "dry_run=false")
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}
