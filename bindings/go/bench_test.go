// SPDX-License-Identifier: MIT
package tel

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// The benchmarks bench/bindings.sh reports: one durable event in process,
// through a handle and through the one call, against `tel emit` run as a
// subprocess (TEL_BIN, else PATH) for the same event.

var benchProps = map[string]any{"command": "deploy", "services": 3, "ratio": 0.5, "dry_run": false}

// cpuMicros is the CPU time, user and system, of this process and of the
// children it has waited for.
func cpuMicros() float64 {
	var self, kids syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids) != nil {
		return 0
	}
	us := func(t syscall.Timeval) float64 { return float64(t.Sec)*1e6 + float64(t.Usec) }
	return us(self.Utime) + us(self.Stime) + us(kids.Utime) + us(kids.Stime)
}

// reportCPU adds the CPU per operation since start beside ns/op.
func reportCPU(b *testing.B, start float64) {
	b.ReportMetric((cpuMicros()-start)/float64(b.N), "cpu-us/op")
}

func BenchmarkHandleEmit(b *testing.B) {
	t, err := Open("bench-go", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	b.ResetTimer()
	c0 := cpuMicros()
	for i := 0; i < b.N; i++ {
		if err := t.Emit("deploy.finished", benchProps); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, c0)
}

func BenchmarkOneCallEmit(b *testing.B) {
	c0 := cpuMicros()
	for i := 0; i < b.N; i++ {
		if err := Emit("bench-go", "deploy.finished", benchProps); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, c0)
}

func BenchmarkTelEmitSubprocess(b *testing.B) {
	bin := os.Getenv("TEL_BIN")
	if bin == "" {
		bin = "tel"
	}
	c0 := cpuMicros()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "emit", "--app", "bench-go", "deploy.finished",
			"command=deploy", "services=3", "ratio=0.5", "dry_run=false")
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, c0)
}
