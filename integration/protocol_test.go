package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestRawLinesRunInOrder: plain statement lines on one connection run one
// after another, as a script piped into socat expects; a get sees the put
// before it.
func TestRawLinesRunInOrder(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	r := rawDial(t, d)
	var script strings.Builder
	const n = 50
	for i := 0; i < n; i++ {
		fmt.Fprintf(&script, "kv put order/k%d v%d\nkv get order/k%d\n", i, i, i)
	}
	r.send(script.String())
	rows := map[int64][]json.RawMessage{}
	for done := 0; done < 2*n; {
		a := r.next()
		switch {
		case a.Error != nil:
			t.Fatalf("request %d failed: %+v", a.ID, a.Error)
		case a.Row != nil:
			rows[a.ID] = append(rows[a.ID], a.Row)
		case a.Done:
			done++
		}
	}
	for i := 0; i < n; i++ {
		get := int64(2*i + 2) // raw ids: put 1, get 2, put 3, …
		if len(rows[get]) != 1 || !strings.Contains(string(rows[get][0]), fmt.Sprintf(`"v%d"`, i)) {
			t.Fatalf("kv get order/k%d (id %d) answered %s, want the value just put", i, get, rows[get])
		}
	}
}

// TestStopWithClientNotReading: SIGTERM ends the daemon even when a client
// has a large answer pending and never reads it: after the drain timeout
// its connection is closed.
func TestStopWithClientNotReading(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withFlags("--drain-timeout", "1s"))
	c := dial(t, d)
	for i := 0; i < 40; i++ {
		do(t, c, fmt.Sprintf("kv put big/k%d %s", i, strings.Repeat("v", 200<<10)))
	}
	conn, err := net.Dial("unix", d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Far more answer bytes than the socket buffers hold; never read.
	if _, err := conn.Write([]byte("kv get big/ prefix\nkv get big/ prefix\nkv get big/ prefix\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	d.Stop() // requires exit 0 within 15s
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stop took %v with a 1s drain timeout", took)
	}
}
