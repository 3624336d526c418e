//go:build linux && amd64

package capture

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/journal"
)

// TestTraceCat traces `sh -c 'cat IN > OUT'` for real: the bytes of IN
// and OUT are seen (GNU cat copies with copy_file_range, others read and
// write), the exit code is the command's, and each process has its exec,
// clone and procexit.
func TestTraceCat(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "IN"), filepath.Join(dir, "OUT")
	if err := os.WriteFile(in, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	var evs []*journal.Body
	code, err := Trace(TraceOptions{Args: []string{"sh", "-c", "cat " + in + " > " + out + "; exit 5"}, Emit: func(b *journal.Body) { evs = append(evs, b) }})
	if errors.Is(err, ErrTraceDenied) {
		t.Skipf("ptrace is refused here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if code != 5 {
		t.Errorf("exit code %d, want 5", code)
	}
	bytes := map[string]int64{}
	kinds := map[string]int{}
	for _, b := range evs {
		kinds[b.Kind+"/"+b.Evt.Type]++
		if b.FD != nil && b.FD.Type == "file" {
			if n, ok := b.Data["bytes"].(int64); ok {
				bytes[b.FD.Name] += n
			}
		}
	}
	if bytes[in] != 64<<10 || bytes[out] != 64<<10 {
		t.Errorf("bytes by file: IN %d, OUT %d, want 65536 each (%v)", bytes[in], bytes[out], bytes)
	}
	if kinds["capture.exec/execve"] < 2 || kinds["capture.exit/procexit"] < 2 || kinds["capture.clone/clone"] < 1 {
		t.Errorf("lifecycle events: %v", kinds)
	}
}
