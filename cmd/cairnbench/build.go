package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/engines/runtime/image/imagetest"
)

// benchDockerfile is the 7-step busybox Dockerfile of docs/build.md.
const benchDockerfile = `FROM busybox
MAINTAINER cairn bench <bench@example.com>
RUN mkdir -p /www && echo "built by RUN" > /www/built
COPY index.html /www/
ENV GREETING=hello
EXPOSE 80
CMD ["cat", "/www/index.html"]
`

// runBuild measures issue 15's targets against `podman build --runtime
// runc` on the same Dockerfile and context, alternating, in one run: a
// cold build (no-cache), a fully cached rebuild, a rebuild after one
// file changed, and a COPY of a 200 MB context of 10,000 files. Both
// are driven from the shell (their CLI processes included).
func runBuild(ctx context.Context, b *bench) error {
	if os.Geteuid() != 0 {
		b.skip("build", "needs root (RUN steps are containers)")
		return nil
	}
	runcBin, err := exec.LookPath("runc")
	if err != nil {
		b.skip("build", "needs runc (Debian runc)")
		return nil
	}
	archive := filepath.Join(b.tmp, "busybox.tar")
	if err := imagetest.WriteBusybox(archive, "busybox:latest", nil); err != nil {
		return err
	}
	d, err := b.newDaemon(filepath.Join(b.tmp, "build-data"))
	if err != nil {
		return err
	}
	if _, _, err := d.start(ctx); err != nil {
		return err
	}
	cairn := func(args ...string) (float64, error) {
		start := time.Now()
		cmd := exec.CommandContext(ctx, b.cfg.bin, append([]string{"--socket", d.Socket}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("cairn %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return time.Since(start).Seconds(), nil
	}
	if _, err := cairn("image", "import", archive, "tag=busybox"); err != nil {
		return err
	}
	podman, _ := exec.LookPath("podman")
	defer func() { _ = unix.Unmount(filepath.Join(b.tmp, "podman-build-root", "overlay"), unix.MNT_DETACH) }()
	podmanRuntime := filepath.Join(b.tmp, "runc-norlimits-build")
	if err := os.WriteFile(podmanRuntime, []byte(norlimitsWrapper(runcBin)), 0o755); err != nil {
		return err
	}
	podmanArgs := []string{"--root", filepath.Join(b.tmp, "podman-build-root"), "--runroot", filepath.Join(b.tmp, "podman-build-run"),
		"--runtime", podmanRuntime, "--cgroup-manager", "cgroupfs", "--events-backend", "none"}
	pod := func(args ...string) (float64, error) {
		start := time.Now()
		out, err := exec.CommandContext(ctx, podman, append(podmanArgs, args...)...).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return time.Since(start).Seconds(), nil
	}
	if podman != "" {
		if _, err := pod("load", "-i", archive); err != nil {
			b.logf("podman load failed, podman left out: %v", err)
			podman = ""
		}
	}
	if podman == "" {
		b.skip("build: podman comparison", "podman is not installed or could not run here")
	}

	ctxDir := filepath.Join(b.tmp, "build-ctx")
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		return err
	}
	write := func(name, content string) error {
		return os.WriteFile(filepath.Join(ctxDir, name), []byte(content), 0o644)
	}
	if err := write("Dockerfile", benchDockerfile); err != nil {
		return err
	}
	rounds := b.cfg.rounds
	var cold, cached, change [2][]float64 // [0] cairn, [1] podman
	podBuild := func(extra ...string) (float64, error) {
		return pod(append(append([]string{"build", "--network", "none", "-t", "benchweb"}, extra...), ctxDir)...)
	}
	for r := range rounds {
		if err := write("index.html", fmt.Sprintf("<h1>round %d</h1>\n", r)); err != nil {
			return err
		}
		t, err := cairn("build", ctxDir, "tag=benchweb", "no-cache")
		if err != nil {
			return err
		}
		cold[0] = append(cold[0], t)
		if t, err = cairn("build", ctxDir, "tag=benchweb"); err != nil {
			return err
		}
		cached[0] = append(cached[0], t)
		if podman != "" {
			if t, err = podBuild("--no-cache"); err != nil {
				return err
			}
			cold[1] = append(cold[1], t)
			if t, err = podBuild(); err != nil {
				return err
			}
			cached[1] = append(cached[1], t)
		}
		// One file changed: the COPY and the steps after it rerun.
		if err := write("index.html", fmt.Sprintf("<h1>round %d, changed</h1>\n", r)); err != nil {
			return err
		}
		if t, err = cairn("build", ctxDir, "tag=benchweb"); err != nil {
			return err
		}
		change[0] = append(change[0], t)
		if podman != "" {
			if t, err = podBuild(); err != nil {
				return err
			}
			change[1] = append(change[1], t)
		}
	}
	report := func(what, target string, limit float64, xs [2][]float64) {
		c := median(xs[0])
		b.add("build: "+what+", cairn p50", "", ms(c), nil)
		if len(xs[1]) == 0 {
			return
		}
		p := median(xs[1])
		b.add("build: "+what+", podman build --runtime runc p50", "", ms(p), nil)
		b.add("build: "+what+", cairn / podman", target, fmt.Sprintf("%.2f×", c/p), ptr(c/p <= limit))
	}
	report("7-step busybox Dockerfile, cold (no-cache)", "≤ 1×", 1, cold)
	report("the same, fully cached rebuild", "≤ 0.5×", 0.5, cached)
	report("the same, one file changed", "≤ 1×", 1, change)

	// A COPY of a 200 MB context of 10,000 files.
	big := filepath.Join(b.tmp, "build-big")
	files, size := 10000, 20<<10
	if b.cfg.quick {
		files = 1000
	}
	buf := make([]byte, size)
	for i := range files {
		dir := filepath.Join(big, "data", fmt.Sprintf("d%02d", i%100))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		_, _ = rand.Read(buf[:64]) // distinct files, as a real tree's
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), buf, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(big, "Dockerfile"), []byte("FROM busybox\nCOPY data /data\n"), 0o644); err != nil {
		return err
	}
	var bigT [2][]float64
	for range max(1, rounds/2) {
		t, err := cairn("build", big, "tag=benchbig", "no-cache")
		if err != nil {
			return err
		}
		bigT[0] = append(bigT[0], t)
		if podman != "" {
			if t, err = pod("build", "--network", "none", "--no-cache", "-t", "benchbig", big); err != nil {
				return err
			}
			bigT[1] = append(bigT[1], t)
		}
	}
	report(fmt.Sprintf("COPY of %d MB in %d files, cold", files*size/1e6, files), "≤ 1×", 1, bigT)
	return nil
}
