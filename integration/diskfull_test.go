package integration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/client"
)

// TestDiskNearlyFull fills a small tmpfs: appends must fail with
// resource_exhausted before the filesystem is full, reads keep working, and
// every acknowledged event is still there after a restart.
func TestDiskNearlyFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs; CI runs as root")
	}
	mnt := shortTempDir(t)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("this machine cannot mount tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })

	d := startDaemon(t, withData(filepath.Join(mnt, "data")), withFlags("--reserve-mb", "40"))
	c := dial(t, d)

	raw := make([]byte, 48<<10)
	acked := 0
	var full error
	for i := 0; i < 2000 && full == nil; i++ {
		rand.Read(raw)
		stmt := fmt.Sprintf("emit fill.blob b%d v=%q", i, base64.StdEncoding.EncodeToString(raw))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := c.Do(ctx, stmt)
		cancel()
		if err != nil {
			full = err
			break
		}
		acked++
	}
	var de *client.DaemonError
	if !errors.As(full, &de) || de.Code != "resource_exhausted" {
		t.Fatalf("after %d appends of 64 KiB on a 96 MiB disk: err = %v, want a resource_exhausted daemon error", acked, full)
	}
	if !strings.Contains(de.Message, "reserve") {
		t.Errorf("resource_exhausted message %q does not say what to do about the reserve", de.Message)
	}
	if acked == 0 {
		t.Fatal("no append succeeded before the reserve was reached")
	}

	// Reads keep working, and a further append still fails cleanly.
	countFills := func() int64 {
		res := do(t, c, "events kind=fill.* count")
		var row struct{ Count int64 }
		if len(res.Rows) != 1 || json.Unmarshal(res.Rows[0], &row) != nil {
			t.Fatalf("count answered %s", res.Rows)
		}
		return row.Count
	}
	if n := countFills(); n != int64(acked) {
		t.Fatalf("%d fill events stored, %d acknowledged", n, acked)
	}

	// Pebble may free space by itself (a flush recycles its WAL), so a
	// later append may succeed; it must never fail any other way.
	if _, err := c.Do(context.Background(), "emit fill.more x n=1"); err == nil {
		acked++
	} else if !errors.As(err, &de) || de.Code != "resource_exhausted" {
		t.Fatalf("append after the reserve: err = %v, want success or resource_exhausted", err)
	}
	d.requireServing()

	c.Close()
	d.Stop() // exit 0 even though daemon.stop cannot be recorded
	d.Restart()
	c = dial(t, d)
	if n := countFills(); n != int64(acked) {
		t.Fatalf("after restart: %d fill events stored, %d acknowledged", n, acked)
	}
}
