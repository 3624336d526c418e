package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeDaemon speaks the wire protocol for a handful of statements:
//
//	echo WORDS   one row {"dsl": WORDS}, done
//	rows N       N rows {"n": i}, done
//	big N        one row whose "value" holds N bytes
//	lines        lines "hello" and "", done
//	tail         an event every 2ms until canceled
//	hang         nothing until canceled
//	bad          a parse error at 1:2
//	missing      a not_found error
//	badcel       an invalid_argument error with a position
//	drop         closes the connection
type fakeDaemon struct {
	socket string
	ln     net.Listener
	wg     sync.WaitGroup

	mu       sync.Mutex
	canceled []int64 // ids the daemon received a cancel for
	conns    map[net.Conn]bool
}

func startFake(t *testing.T) *fakeDaemon {
	t.Helper()
	// Unix socket paths are short; t.TempDir can exceed the limit.
	dir, err := tempSocketDir()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDaemon{socket: filepath.Join(dir, "cairn.sock"), conns: map[net.Conn]bool{}}
	f.ln, err = net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() {
		f.ln.Close()
		f.mu.Lock()
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
		removeSocketDir(dir)
	})
	return f
}

func (f *fakeDaemon) serve() {
	defer f.wg.Done()
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[conn] = true
		f.mu.Unlock()
		f.wg.Add(1)
		go f.handle(conn)
	}
}

func (f *fakeDaemon) cancels() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.canceled...)
}

func (f *fakeDaemon) handle(conn net.Conn) {
	defer f.wg.Done()
	defer conn.Close()
	var wmu sync.Mutex
	write := func(v map[string]any) {
		b, _ := json.Marshal(v)
		wmu.Lock()
		conn.Write(append(b, '\n'))
		wmu.Unlock()
	}
	var (
		mu      sync.Mutex
		cancels = map[int64]chan struct{}{}
		reqs    sync.WaitGroup
	)
	defer reqs.Wait()
	sc := bufio.NewScanner(conn)
	sc.Buffer(nil, scanLimit)
	for sc.Scan() {
		var env struct {
			ID     int64  `json:"id"`
			DSL    string `json:"dsl"`
			Cancel bool   `json:"cancel"`
		}
		if err := json.Unmarshal(sc.Bytes(), &env); err != nil {
			write(map[string]any{"id": 0, "error": map[string]any{"code": "parse", "message": err.Error()}})
			continue
		}
		if env.Cancel {
			f.mu.Lock()
			f.canceled = append(f.canceled, env.ID)
			f.mu.Unlock()
			mu.Lock()
			if ch, ok := cancels[env.ID]; ok {
				close(ch)
				delete(cancels, env.ID)
			}
			mu.Unlock()
			continue
		}
		canceled := make(chan struct{})
		mu.Lock()
		cancels[env.ID] = canceled
		mu.Unlock()
		if env.DSL == "drop" {
			conn.Close()
			break
		}
		reqs.Add(1)
		go func() {
			defer reqs.Done()
			f.run(env.ID, env.DSL, canceled, write)
			mu.Lock()
			delete(cancels, env.ID)
			mu.Unlock()
		}()
	}
	// The connection is gone: end every running request.
	mu.Lock()
	for id, ch := range cancels {
		close(ch)
		delete(cancels, id)
	}
	mu.Unlock()
}

func (f *fakeDaemon) run(id int64, dsl string, canceled <-chan struct{}, write func(map[string]any)) {
	verb, arg, _ := strings.Cut(dsl, " ")
	n, _ := strconv.Atoi(arg)
	done := map[string]any{"id": id, "done": true}
	cancelErr := map[string]any{"id": id, "error": map[string]any{"code": "canceled", "message": "canceled"}}
	switch verb {
	case "echo":
		write(map[string]any{"id": id, "row": map[string]any{"dsl": arg}})
		write(done)
	case "rows":
		for i := range n {
			write(map[string]any{"id": id, "row": map[string]any{"n": i}})
		}
		write(done)
	case "big":
		write(map[string]any{"id": id, "row": map[string]any{"value": strings.Repeat("x", n)}})
		write(done)
	case "lines":
		write(map[string]any{"id": id, "line": "hello"})
		write(map[string]any{"id": id, "line": ""})
		write(done)
	case "tail":
		for seq := 1; ; seq++ {
			select {
			case <-canceled:
				write(cancelErr)
				return
			case <-time.After(2 * time.Millisecond):
				write(map[string]any{"id": id, "event": map[string]any{"seq": seq, "kind": "test.tick"}})
			}
		}
	case "hang":
		<-canceled
		write(cancelErr)
	case "bad":
		write(map[string]any{"id": id, "error": map[string]any{
			"code": "parse", "message": `1:2: unknown verb "bad"`, "pos": map[string]any{"line": 1, "col": 2}}})
	case "missing":
		write(map[string]any{"id": id, "error": map[string]any{"code": "not_found", "message": `key "a" not found`}})
	case "badcel":
		write(map[string]any{"id": id, "error": map[string]any{
			"code": "invalid_argument", "message": "1:9: undeclared reference to 'x'", "pos": map[string]any{"line": 1, "col": 9}}})
	default:
		write(map[string]any{"id": id, "error": map[string]any{"code": "parse", "message": "1:1: unknown verb"}})
	}
}

func dial(t *testing.T, f *fakeDaemon) *Client {
	t.Helper()
	c, err := Dial(context.Background(), f.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDo(t *testing.T) {
	f := startFake(t)
	c := dial(t, f)
	ctx := context.Background()

	res, err := c.Do(ctx, "echo kv get a")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 1 || string(res.Rows[0]) != `{"dsl":"kv get a"}` {
		t.Fatalf("rows = %s", res.Rows)
	}

	res, err = c.Do(ctx, "rows 100")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 100 || string(res.Rows[99]) != `{"n":99}` {
		t.Fatalf("got %d rows, last %s", len(res.Rows), res.Rows[len(res.Rows)-1])
	}

	res, err = c.Do(ctx, "lines")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%q", res.Lines) != `["hello" ""]` {
		t.Fatalf("lines = %q", res.Lines)
	}
}

func TestErrors(t *testing.T) {
	f := startFake(t)
	c := dial(t, f)
	ctx := context.Background()

	_, err := c.Do(ctx, "bad")
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Pos != (Pos{Line: 1, Col: 2}) || err.Error() != `1:2: unknown verb "bad"` {
		t.Fatalf("bad: %#v %v", err, err)
	}
	if ExitCode(err) != 2 {
		t.Errorf("ExitCode(parse) = %d", ExitCode(err))
	}

	_, err = c.Do(ctx, "missing")
	var de *DaemonError
	if !errors.As(err, &de) || de.Code != "not_found" || de.Pos != nil {
		t.Fatalf("missing: %#v", err)
	}
	if ExitCode(err) != 1 {
		t.Errorf("ExitCode(not_found) = %d", ExitCode(err))
	}

	_, err = c.Do(ctx, "badcel")
	if !errors.As(err, &de) || de.Code != "invalid_argument" || de.Pos == nil || *de.Pos != (Pos{Line: 1, Col: 9}) {
		t.Fatalf("badcel: %#v", err)
	}
	if ExitCode(err) != 2 {
		t.Errorf("ExitCode(invalid_argument) = %d", ExitCode(err))
	}

	// The connection stays usable after errors.
	if _, err := c.Do(ctx, "echo ok"); err != nil {
		t.Fatal(err)
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{&UnreachableError{Socket: "s", Err: io.EOF}, 3},
		{fmt.Errorf("wrapped: %w", &UnreachableError{Socket: "s", Err: io.EOF}), 3},
		{&ParseError{Message: "x"}, 2},
		{&DaemonError{Code: "invalid_argument"}, 2},
		{&DaemonError{Code: "failed_precondition"}, 1},
		{&DaemonError{Code: "canceled"}, 1},
		{errors.New("other"), 1},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestUnreachable(t *testing.T) {
	dir, err := tempSocketDir()
	if err != nil {
		t.Fatal(err)
	}
	defer removeSocketDir(dir)
	socket := filepath.Join(dir, "nobody.sock")
	_, err = Dial(context.Background(), socket)
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Socket != socket {
		t.Fatalf("Dial = %#v", err)
	}
	if ExitCode(err) != 3 || !strings.Contains(err.Error(), socket) {
		t.Fatalf("err = %v, exit %d", err, ExitCode(err))
	}
}

func TestConnectionLost(t *testing.T) {
	f := startFake(t)
	c := dial(t, f)
	ctx := context.Background()
	s, err := c.Stream(ctx, "hang")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Do(ctx, "drop")
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("Do(drop) = %#v", err)
	}
	if _, err := s.Next(); !errors.As(err, &ue) {
		t.Fatalf("pending stream: %#v", err)
	}
	if _, err := c.Do(ctx, "echo again"); !errors.As(err, &ue) {
		t.Fatalf("after loss: %#v", err)
	}
}

func TestClose(t *testing.T) {
	f := startFake(t)
	c, err := Dial(context.Background(), f.socket)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Stream(context.Background(), "hang")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
	if _, err := c.Do(context.Background(), "echo x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestBigAnswers(t *testing.T) {
	f := startFake(t)
	c := dial(t, f)
	const size = 3 << 20
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Do(context.Background(), "big "+strconv.Itoa(size))
			if err != nil {
				t.Error(err)
				return
			}
			var row struct{ Value string }
			if err := json.Unmarshal(res.Rows[0], &row); err != nil || len(row.Value) != size {
				t.Errorf("big row: %d bytes, err %v", len(row.Value), err)
			}
		}()
	}
	wg.Wait()
}

func TestStreamCancel(t *testing.T) {
	f := startFake(t)
	c := dial(t, f)
	s, err := c.Stream(context.Background(), "tail")
	if err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 5; want++ {
		a, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		var ev struct{ Seq int }
		if err := json.Unmarshal(a.Event, &ev); err != nil || ev.Seq != want {
			t.Fatalf("event %s, want seq %d", a.Event, want)
		}
	}
	if err := s.Cancel(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Next()
	if !IsCanceled(err) {
		t.Fatalf("after Cancel: %v", err)
	}
	if got := f.cancels(); len(got) != 1 || got[0] != s.ID() {
		t.Fatalf("daemon saw cancels %v, want [%d]", got, s.ID())
	}
	// Canceling again, or after the end, sends nothing.
	if err := s.Cancel(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), "echo still here"); err != nil {
		t.Fatal(err)
	}
	if got := f.cancels(); len(got) != 1 {
		t.Fatalf("daemon saw cancels %v", got)
	}
}

func TestStreamContext(t *testing.T) {
	f := startFake(t)
	c := dial(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.Stream(ctx, "tail")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	for {
		_, err := s.Next()
		if err == nil {
			continue // answers already queued before the cancel took effect
		}
		if !IsCanceled(err) {
			t.Fatalf("after ctx cancel: %v", err)
		}
		break
	}
}

func TestDoContext(t *testing.T) {
	f := startFake(t)
	c := dial(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Do(ctx, "hang")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do(hang) = %v", err)
	}
	// The daemon was told, and the connection still works.
	deadline := time.Now().Add(5 * time.Second)
	for len(f.cancels()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if len(f.cancels()) != 1 {
		t.Fatalf("daemon saw cancels %v", f.cancels())
	}
	if _, err := c.Do(context.Background(), "echo x"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "echo x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do with an ended ctx = %v", err)
	}
}

// TestInterleaving keeps a stream open, and unread, while 50 goroutines run
// statements on the same client: the unread stream must not hold them up,
// and every answer must reach the request that asked for it.
func TestInterleaving(t *testing.T) {
	f := startFake(t)
	c := dial(t, f)
	ctx := context.Background()
	tail, err := c.Stream(ctx, "tail")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				word := fmt.Sprintf("g%d-%d", g, i)
				res, err := c.Do(ctx, "echo "+word)
				if err != nil {
					t.Error(err)
					return
				}
				if want := `{"dsl":"` + word + `"}`; len(res.Rows) != 1 || string(res.Rows[0]) != want {
					t.Errorf("got %s, want %s", res.Rows, want)
					return
				}
				if i%5 == 0 {
					res, err := c.Do(ctx, "rows 7")
					if err != nil || len(res.Rows) != 7 {
						t.Errorf("rows 7: %v, %d rows", err, len(res.Rows))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	// The stream kept its events meanwhile, in order.
	for want := 1; want <= 3; want++ {
		a, err := tail.Next()
		if err != nil {
			t.Fatal(err)
		}
		var ev struct{ Seq int }
		json.Unmarshal(a.Event, &ev)
		if ev.Seq != want {
			t.Fatalf("tail seq %d, want %d", ev.Seq, want)
		}
	}
	tail.Cancel()
	if _, err := tail.Next(); !IsCanceled(err) {
		t.Fatalf("tail end: %v", err)
	}
}

func TestDefaultSocket(t *testing.T) {
	t.Setenv(SocketEnv, "/x/y.sock")
	if got := DefaultSocket(); got != "/x/y.sock" {
		t.Errorf("with $%s: %s", SocketEnv, got)
	}
	t.Setenv(SocketEnv, "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	want := "/run/user/1000/cairn.sock"
	if isRoot() {
		want = "/run/cairn/cairn.sock"
	}
	if got := DefaultSocket(); got != want {
		t.Errorf("DefaultSocket() = %s, want %s", got, want)
	}
}

// tempSocketDir makes a short directory for a test socket; t.TempDir paths
// can exceed the 108-byte limit of a unix socket address.
func tempSocketDir() (string, error) { return os.MkdirTemp("", "cairn-test-") }

func removeSocketDir(dir string) { os.RemoveAll(dir) }

func isRoot() bool { return os.Geteuid() == 0 }
