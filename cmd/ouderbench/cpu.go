package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// On a shared machine another job's CPU use lowers whichever figures it
// overlaps, which can turn a ratio upside down. The suite therefore
// measures, per scenario, the CPU time that neither it nor its children
// (ouderd, PostgreSQL) used: other processes, and time the hypervisor stole.

// clockTick is USER_HZ, the unit of /proc CPU times; 100 on every Linux
// architecture Go supports.
const clockTick = 100

// disturbedShare is the share of the machine's CPU time that others may
// take during a scenario before the report calls its figures disturbed.
const disturbedShare = 0.10

// cpuSample is a reading of the machine's and our process tree's CPU time.
type cpuSample struct {
	at         time.Time
	cpus       int     // in /proc/stat
	busy, ours float64 // seconds: all CPUs' non-idle time (steal included), ours
	ok         bool
}

// sampleCPU reads /proc. The sample is not ok where /proc is unavailable.
func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, rest, _ := strings.Cut(string(b), "\n")
	for l := range strings.Lines(rest) {
		if len(l) > 3 && l[:3] == "cpu" && l[3] >= '0' && l[3] <= '9' {
			s.cpus++
		}
	}
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return s
	}
	// user nice system idle iowait irq softirq steal: all but idle and
	// iowait are time the CPUs were not ours to use if not ours.
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseFloat(f[i], 64)
		s.busy += v / clockTick
	}
	s.ours, s.ok = treeCPU(os.Getpid())
	return s
}

// treeCPU returns the CPU time of process root and its descendants, with
// that of descendants already reaped (cutime, cstime), in seconds.
func treeCPU(root int) (float64, bool) {
	dirs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(dirs) == 0 {
		return 0, false
	}
	type proc struct {
		ppid int
		cpu  float64
	}
	procs := map[int]proc{}
	for _, path := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone since the glob
		}
		// pid (comm) state ppid ... utime stime cutime cstime: comm may
		// hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		var p proc
		p.ppid, _ = strconv.Atoi(f[1])
		for _, j := range []int{11, 12, 13, 14} {
			v, _ := strconv.ParseFloat(f[j], 64)
			p.cpu += v / clockTick
		}
		procs[pid] = p
	}
	var sum float64
	for pid, p := range procs {
		for q := pid; q > 0; q = procs[q].ppid {
			if q == root {
				sum += p.cpu
				break
			}
			if _, ok := procs[q]; !ok {
				break
			}
		}
	}
	return sum, true
}

// othersShare returns the share of the machine's CPU time between a and b
// that others used, and false when it cannot be told.
func othersShare(a, b cpuSample) (float64, bool) {
	wall := b.at.Sub(a.at).Seconds()
	if !a.ok || !b.ok || wall <= 0 || b.cpus == 0 {
		return 0, false
	}
	others := (b.busy - a.busy) - (b.ours - a.ours)
	return min(max(others/(wall*float64(b.cpus)), 0), 1), true
}
