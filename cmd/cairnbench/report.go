package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/internal/mountinfo"
)

// bench carries one run: its configuration, its scratch directory, the
// daemons it started and the rows of the table.
type bench struct {
	cfg   config
	tmp   string
	start time.Time
	facts []string
	rows  []row

	mu      sync.Mutex
	daemons []*daemonProc
}

// row is one line of the table. Target is empty for context figures.
type row struct {
	name, target, measured, result string
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

// add records a figure. pass is nil for context figures without a target.
func (b *bench) add(name, target, measured string, pass *bool) {
	res := ""
	if pass != nil {
		res = "MISS"
		if *pass {
			res = "PASS"
		}
	}
	b.rows = append(b.rows, row{name, target, measured, res})
	b.logf("%s: %s %s", name, measured, res)
}

func (b *bench) skip(name, why string) {
	b.rows = append(b.rows, row{name, "", why, "SKIP"})
}

func ptr(v bool) *bool { return &v }

func (b *bench) sizeNote() string {
	if b.cfg.quick {
		return "quick"
	}
	return "full"
}

// printFacts prints what bounds every figure: the machine and the data
// directory's filesystem.
func (b *bench) printFacts() {
	var u unix.Utsname
	_ = unix.Uname(&u)
	kernel := unix.ByteSliceToString(u.Release[:])
	cpu := "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	binGo := ""
	if b.cfg.bin != "" {
		if out, err := exec.Command("go", "version", b.cfg.bin).Output(); err == nil {
			if _, v, ok := bytes.Cut(bytes.TrimSpace(out), []byte(": ")); ok {
				binGo = " (" + b.cfg.bin + " built with " + string(v) + ")"
			}
		}
	}
	b.facts = []string{
		"date: " + time.Now().UTC().Format(time.RFC3339),
		fmt.Sprintf("machine: %d CPUs (%s), kernel %s, %s/%s", runtime.NumCPU(), cpu, kernel, runtime.GOOS, runtime.GOARCH),
		"go: " + runtime.Version() + binGo,
		"data dir: " + b.tmp + " on " + fsOf(b.tmp),
		fmt.Sprintf("sizes: %s, rounds: %d (figures are medians of the rounds)", b.sizeNote(), b.cfg.rounds),
	}
	for _, f := range b.facts {
		fmt.Println(f)
	}
}

// fsOf names the filesystem holding dir, from /proc/self/mountinfo.
func fsOf(dir string) string {
	mounts, err := mountinfo.Self()
	if err != nil {
		return "?"
	}
	best := mountinfo.Mount{FSType: "?"}
	for _, m := range mounts {
		mp := m.MountPoint
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best.MountPoint) {
			best = m
		}
	}
	return fmt.Sprintf("%s (%s at %s)", best.FSType, best.Source, best.MountPoint)
}

func (b *bench) printTable() {
	fmt.Println()
	w := [3]int{len("benchmark"), len("target"), len("measured (median)")}
	for _, r := range b.rows {
		w[0], w[1], w[2] = max(w[0], len(r.name)), max(w[1], len(r.target)), max(w[2], len(r.measured))
	}
	line := func(a, t, m, r string) {
		fmt.Printf("| %-*s | %-*s | %-*s | %-6s |\n", w[0], a, w[1], t, w[2], m, r)
	}
	line("benchmark", "target", "measured (median)", "result")
	fmt.Printf("|%s|%s|%s|--------|\n", strings.Repeat("-", w[0]+2), strings.Repeat("-", w[1]+2), strings.Repeat("-", w[2]+2))
	for _, r := range b.rows {
		line(r.name, r.target, r.measured, r.result)
	}
	misses := 0
	for _, r := range b.rows {
		if r.result == "MISS" {
			misses++
		}
	}
	fmt.Printf("\n%d target(s) missed; run took %s\n", misses, time.Since(b.start).Round(time.Second))
}

// median returns the median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile returns the p-th percentile (0..100) of xs, nearest rank.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// rate formats events per second.
func rate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM events/s", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk events/s", r/1e3)
	}
	return fmt.Sprintf("%.0f events/s", r)
}

func ms(d float64) string { // d in seconds
	switch {
	case d < 1e-3:
		return fmt.Sprintf("%.0f µs", d*1e6)
	case d < 10e-3:
		return fmt.Sprintf("%.2f ms", d*1e3)
	}
	return fmt.Sprintf("%.1f ms", d*1e3)
}
