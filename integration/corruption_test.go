package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/client"
)

// TestDamagedSSTableIsDataLoss flips one byte in a data block of an audit
// sstable. Reading past it answers data_loss naming the last intact seq and
// the file (not internal with a Go stack), journal verify names the first
// bad seq, and the daemon keeps serving. Finding 11 of the hardening issue.
func TestDamagedSSTableIsDataLoss(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	c := dial(t, d)
	big := strings.Repeat("x", 3000)
	// About 9 MiB: more than the audit memtable holds, so sstables exist.
	for i := range 3000 {
		emit(t, c, fmt.Sprintf("emit app.big k/%d v=%s", i, big))
	}
	c.Close()
	d.Stop()

	ssts, _ := filepath.Glob(filepath.Join(d.Data, "audit", "*.sst"))
	var biggest string
	var size int64
	for _, p := range ssts {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
	}
	if size < 100<<10 {
		t.Fatalf("no sstable of the audit stream to damage (found %v)", ssts)
	}
	flipByte(t, biggest, size/2)

	d.Restart()
	c = dial(t, d)
	_, err := c.Do(t.Context(), "events count")
	var de *client.DaemonError
	if !errors.As(err, &de) || de.Code != "data_loss" {
		t.Fatalf("events over a damaged sstable: %v, want data_loss", err)
	}
	if !strings.Contains(de.Message, filepath.Base(biggest)) || !strings.Contains(de.Message, "the event after seq") || strings.Contains(de.Message, "goroutine") || strings.Contains(de.Message, "stack trace") {
		t.Errorf("data_loss message does not name the seq and the file, or carries a stack:\n%s", de.Message)
	}
	out, errOut, code := cli(t, d, "journal", "verify")
	if code == 0 || !strings.Contains(out+errOut, "first bad seq") || !strings.Contains(out+errOut, "damaged") {
		t.Errorf("journal verify over a damaged sstable: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := cli(t, d, "status"); code != 0 {
		t.Fatalf("status after data loss: exit %d: %s", code, errOut)
	}
}
