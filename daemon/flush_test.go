package daemon

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/engines"
)

// TestRequestFlushSendsProgress: a non-stream request gathers its answers
// until its done, unless the handler flushes (infra apply's progress).
func TestRequestFlushSendsProgress(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	server, client := conn(fds[0]), conn(fds[1])
	defer server.Close()
	defer client.Close()
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), connCtx: context.Background()}
	r := &request{id: 7, conn: s.newConn(server, Peer{})}
	var _ engines.Flusher = r

	lines := bufio.NewReader(client)
	read := func() (string, bool) {
		client.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		l, err := lines.ReadString('\n')
		return l, err == nil
	}
	if err := r.Line("Creating..."); err != nil {
		t.Fatal(err)
	}
	if l, ok := read(); ok {
		t.Fatalf("an answer went out before a flush: %q", l)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if l, ok := read(); !ok || !strings.Contains(l, "Creating...") {
		t.Fatalf("after Flush: %q, %v", l, ok)
	}
}
