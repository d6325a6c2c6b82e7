package main

import (
	"math"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestOthersShare(t *testing.T) {
	t.Parallel()
	at := time.Unix(1000, 0)
	a := cpuSample{at: at, cpus: 2, busy: 100, ours: 40, ok: true}
	tests := []struct {
		name   string
		b      cpuSample
		want   float64
		wantOK bool
	}{
		{"all ours", cpuSample{at: at.Add(10 * time.Second), cpus: 2, busy: 118, ours: 58, ok: true}, 0, true},
		{"a quarter others", cpuSample{at: at.Add(10 * time.Second), cpus: 2, busy: 120, ours: 55, ok: true}, 0.25, true},
		{"ours counted late", cpuSample{at: at.Add(10 * time.Second), cpus: 2, busy: 110, ours: 55, ok: true}, 0, true},
		{"no /proc", cpuSample{at: at.Add(10 * time.Second)}, 0, false},
		{"no time", cpuSample{at: at, cpus: 2, busy: 120, ours: 40, ok: true}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := othersShare(a, tt.b)
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("othersShare = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestSampleCPUCountsOurs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	// Spin until this process has used 300 ms of CPU (more wall time on a
	// busy machine), measured by the kernel's own account of it.
	self := func() float64 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	a, start := sampleCPU(), self()
	for self()-start < 0.3 {
	}
	b, used := sampleCPU(), self()-start
	if !a.ok || !b.ok || a.cpus < 1 {
		t.Fatalf("samples not ok: %+v %+v", a, b)
	}
	// Within a few clock ticks: /proc counts in hundredths of a second.
	if d := b.ours - a.ours; d < used-0.05 {
		t.Errorf("our CPU time grew by %.2fs; the kernel says we used %.2fs", d, used)
	}
	if d := b.busy - a.busy; d < used-0.05 {
		t.Errorf("the machine was busy %.2fs, less than our own %.2fs", d, used)
	}
}

func TestSampleCPUCountsChildren(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	// A child that burns CPU is ours while it runs, as ouderd and
	// PostgreSQL are.
	a := sampleCPU()
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	child := func() float64 {
		v, ok := treeCPU(cmd.Process.Pid)
		if !ok {
			t.Fatal("cannot read the child's CPU time")
		}
		return v
	}
	deadline := time.Now().Add(30 * time.Second)
	for child() < 0.3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	used := child()
	b := sampleCPU()
	if used < 0.3 {
		t.Fatalf("the child used only %.2fs of CPU in 30s", used)
	}
	if d := b.ours - a.ours; d < used-0.02 {
		t.Errorf("our tree's CPU time grew by %.2fs; the child alone used %.2fs", d, used)
	}
}
