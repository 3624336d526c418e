package integration

import (
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestCaptureConnShortTransfer is the acceptance for the conn
// source: a 1 MiB TCP transfer on a connection that lives well under one
// poll interval shows in topconns with ≈1 MiB. Only the kernel's destroy
// notifications can tell it: no poll ever sees the connection.
func TestCaptureConnShortTransfer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the conn source needs root (sock_diag destroy notifications need CAP_NET_ADMIN); CI runs as root")
	}
	t.Parallel()
	d := startDaemon(t)
	c := dial(t, d)
	if _, err := c.Do(t.Context(), "capture start conn interval=5s"); err != nil {
		t.Fatalf("capture start conn interval=5s: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 1 << 20
	read := make(chan int64, 1)
	go func() {
		sc, err := ln.Accept()
		if err != nil {
			read <- -1
			return
		}
		n, _ := io.Copy(io.Discard, sc)
		sc.Close()
		read <- n
	}()
	start := time.Now()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	cc.Close()
	if n := <-read; n != size {
		t.Fatalf("the server read %d bytes, want %d", n, size)
	}
	if lived := time.Since(start); lived > time.Second {
		t.Fatalf("the connection lived %v: not well under the 5s poll interval", lived)
	}
	conn := cc.LocalAddr().String() + "->" + ln.Addr().String()

	// Both ends' closes come from destroy notifications, before any poll.
	where := `kind == "capture.close" && fd.name == "` + conn + `"`
	pollCapture(t, c, "events stream=capture where '"+where+" && data.seen_at_close == true'", conn, func(captureEvent) bool { return true })

	var line string
	deadline := time.Now().Add(10 * time.Second)
	for line == "" {
		for _, l := range do(t, c, "chisel topconns").Lines {
			if strings.HasSuffix(l, " "+conn) {
				line = l
			}
		}
		if line == "" && time.Now().After(deadline) {
			t.Fatalf("chisel topconns lists no %s", conn)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Bytes are sysdig's: 1 MiB (+ the SYN and FIN) is 1.00M.
	if f := strings.Fields(line); len(f) != 3 || f[0] != "1.00M" || f[1] != "tcp" {
		t.Errorf("topconns: %q, want 1.00M tcp %s", line, conn)
	}
	if _, err := c.Do(t.Context(), "capture stop conn"); err != nil {
		t.Fatalf("capture stop conn: %v", err)
	}
}
