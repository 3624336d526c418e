package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// wireAnswer is one answer line of the wire protocol.
type wireAnswer struct {
	ID    int64           `json:"id"`
	Row   json.RawMessage `json:"row"`
	Event json.RawMessage `json:"event"`
	Line  *string         `json:"line"`
	Done  bool            `json:"done"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Pos     *struct {
			Line int `json:"line"`
			Col  int `json:"col"`
		} `json:"pos"`
	} `json:"error"`
}

// rawConn is a bare connection to the socket, as socat would make.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	sc   *bufio.Scanner
}

func rawDial(t *testing.T, d *daemonProc) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("unix", d.Socket, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sc := bufio.NewScanner(conn)
	sc.Buffer(nil, 8<<20)
	return &rawConn{t: t, conn: conn, sc: sc}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	r.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(r.conn, s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// next reads one answer line, which must be JSON.
func (r *rawConn) next() wireAnswer {
	r.t.Helper()
	a, err := readAnswer(r.conn, r.sc)
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

func readAnswer(conn net.Conn, sc *bufio.Scanner) (wireAnswer, error) {
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if !sc.Scan() {
		return wireAnswer{}, fmt.Errorf("no answer line: %v", sc.Err())
	}
	var a wireAnswer
	if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
		return wireAnswer{}, fmt.Errorf("answer line %q is not JSON: %v", sc.Bytes(), err)
	}
	return a, nil
}

// readAllAnswers reads answer lines in the background until the connection
// ends, so that the daemon never blocks writing to a test that is still
// sending.
func (r *rawConn) readAllAnswers() <-chan wireAnswer {
	ch := make(chan wireAnswer, 1<<16)
	go func() {
		defer close(ch)
		for {
			r.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
			if !r.sc.Scan() {
				return
			}
			var a wireAnswer
			if err := json.Unmarshal(r.sc.Bytes(), &a); err != nil {
				r.t.Errorf("answer line %q is not JSON: %v", r.sc.Bytes(), err)
				return
			}
			ch <- a
		}
	}()
	return ch
}

// waitStatusAnswered reads answers until request id is answered with a row
// and done; it returns every answer seen before.
func waitStatusAnswered(t *testing.T, ch <-chan wireAnswer, id int64) []wireAnswer {
	t.Helper()
	var seen []wireAnswer
	gotRow := false
	deadline := time.After(60 * time.Second)
	for {
		select {
		case a, ok := <-ch:
			if !ok {
				t.Fatalf("connection ended before status (id %d) was answered; answers: %d", id, len(seen))
			}
			if a.ID != id {
				seen = append(seen, a)
				continue
			}
			switch {
			case a.Row != nil:
				gotRow = true
			case a.Done && gotRow:
				return seen
			default:
				t.Fatalf("status (id %d) answered %+v", id, a)
			}
		case <-deadline:
			t.Fatalf("status (id %d) not answered within 60s", id)
		}
	}
}

var lineCol = regexp.MustCompile(`\b\d+:\d+\b`)

// TestBadInput feeds the daemon malformed statements, bad CEL, garbage,
// overlong lines, malformed envelopes, vanishing streams and 1,000
// connections at once: it answers each with a clear error and serves on
// with a bounded RSS.
func TestBadInput(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	c := dial(t, d)
	for i := range 20 {
		emit(t, c, fmt.Sprintf("emit app.seed s/%d", i))
	}
	baseFDs := fdCount(t, d.Pid())

	t.Run("cli unknown verb", func(t *testing.T) {
		_, errOut, code := cli(t, d, "statuss")
		if code != 2 || !strings.Contains(errOut, "1:1") || !strings.Contains(errOut, `did you mean "status"`) {
			t.Errorf("cairn statuss: exit %d, stderr %q; want exit 2, 1:1 and did you mean \"status\"", code, errOut)
		}
	})
	t.Run("cli unknown option", func(t *testing.T) {
		_, errOut, code := cli(t, d, "events", "limt=5")
		if code != 2 || !strings.Contains(errOut, `"limit"`) || !strings.Contains(errOut, "1:8") {
			t.Errorf("cairn events limt=5: exit %d, stderr %q; want exit 2 at 1:8 suggesting \"limit\"", code, errOut)
		}
	})
	t.Run("cli bad CEL syntax", func(t *testing.T) {
		_, errOut, code := cli(t, d, "events", "where", "kind ===")
		if code != 2 || !lineCol.MatchString(errOut) {
			t.Errorf("cairn events where 'kind ===': exit %d, stderr %q; want exit 2 with line:col", code, errOut)
		}
	})
	t.Run("cli CEL unknown field", func(t *testing.T) {
		_, errOut, code := cli(t, d, "events", "where", `proc.nmae == "x"`)
		if code != 2 || !strings.Contains(errOut, "proc.name") || !lineCol.MatchString(errOut) {
			t.Errorf("cairn events where 'proc.nmae == \"x\"': exit %d, stderr %q; want exit 2 suggesting proc.name", code, errOut)
		}
	})
	t.Run("cli CEL not boolean", func(t *testing.T) {
		_, errOut, code := cli(t, d, "events", "where", "kind")
		if code != 2 || errOut == "" {
			t.Errorf("cairn events where 'kind': exit %d, stderr %q; want exit 2", code, errOut)
		}
	})
	t.Run("cli bad CEL in tail fails before streaming", func(t *testing.T) {
		_, errOut, code := cli(t, d, "tail", "where", `proc.nmae == "x"`)
		if code != 2 || !strings.Contains(errOut, "proc.name") {
			t.Errorf("cairn tail where 'proc.nmae == \"x\"': exit %d, stderr %q; want exit 2", code, errOut)
		}
	})

	t.Run("raw parse error keeps the connection", func(t *testing.T) {
		r := rawDial(t, d)
		r.send("statuss\n")
		a := r.next()
		if a.ID != 1 || a.Error == nil || a.Error.Code != "parse" || a.Error.Pos == nil || a.Error.Pos.Line != 1 || a.Error.Pos.Col != 1 {
			t.Fatalf("statuss answered %+v, want id 1 error code parse at 1:1", a)
		}
		if !strings.Contains(a.Error.Message, `did you mean "status"`) {
			t.Errorf("parse error message %q has no suggestion", a.Error.Message)
		}
		r.send("status\n")
		if a := r.next(); a.ID != 2 || a.Row == nil {
			t.Fatalf("status answered %+v, want a row of id 2", a)
		}
		if a := r.next(); a.ID != 2 || !a.Done {
			t.Fatalf("status ended with %+v, want done of id 2", a)
		}
	})

	t.Run("binary garbage", func(t *testing.T) {
		for _, withNewlines := range []bool{true, false} {
			r := rawDial(t, d)
			answers := r.readAllAnswers()
			garbage := make([]byte, 1<<20)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range garbage {
				garbage[i] = byte(rng.Uint32())
				if !withNewlines && garbage[i] == '\n' {
					garbage[i] = 0
				}
			}
			r.send(string(garbage))
			r.send("\n{\"id\":999999,\"dsl\":\"status\"}\n")
			seen := waitStatusAnswered(t, answers, 999999)
			// Garbage is answered by errors, or by done for a line the
			// language reads as empty (a comment): never by a result.
			for _, a := range seen {
				if a.Error == nil && !a.Done {
					t.Errorf("garbage (newlines %v) answered %+v, want only errors", withNewlines, a)
					break
				}
			}
			if len(seen) == 0 {
				t.Errorf("garbage (newlines %v) got no error answer", withNewlines)
			}
			r.conn.Close()
		}
	})

	t.Run("line over 4 MiB", func(t *testing.T) {
		r := rawDial(t, d)
		answers := r.readAllAnswers()
		r.send(strings.Repeat("x", 5<<20) + "\n")
		r.send("status\n")
		// The overlong raw line still takes raw id 1, so status is id 2.
		seen := waitStatusAnswered(t, answers, 2)
		if len(seen) != 1 || seen[0].ID != 1 || seen[0].Error == nil || seen[0].Error.Code != "invalid_argument" {
			t.Errorf("a 5 MiB line answered %+v, want one invalid_argument error with id 1", seen)
		}
	})

	t.Run("malformed envelopes", func(t *testing.T) {
		r := rawDial(t, d)
		answers := r.readAllAnswers()
		bad := []string{
			`{"id":`,
			`{"id":"a","dsl":"status"}`,
			`{"dsl":"status"}`,
			`{"id":-1,"dsl":"status"}`,
			`{"id":0,"dsl":"status"}`,
			`{]`,
			`{"id":1e400,"dsl":"status"}`,
		}
		r.send(strings.Join(bad, "\n") + "\n" + `{"id":5,"dsl":"stauts"}` + "\n" + `{"id":77,"dsl":"status"}` + "\n")
		seen := waitStatusAnswered(t, answers, 77)
		errs, parse := 0, false
		for _, a := range seen {
			switch {
			case a.ID == 5 && a.Error != nil && a.Error.Code == "parse":
				parse = true
			case a.Error != nil:
				errs++
			default:
				t.Errorf("a malformed envelope was answered %+v", a)
			}
		}
		if !parse {
			// id 5 runs in its own goroutine: its answer may follow id 77's.
			select {
			case a := <-answers:
				parse = a.ID == 5 && a.Error != nil && a.Error.Code == "parse"
			case <-time.After(30 * time.Second):
			}
		}
		if errs != len(bad) || !parse {
			t.Errorf("%d error answers for %d malformed envelopes (want one each), parse error for id 5: %v", errs, len(bad), parse)
		}
	})

	t.Run("clients vanish mid-stream", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 400 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := net.DialTimeout("unix", d.Socket, 10*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				switch i % 4 {
				case 0: // start a catch-up tail and leave without reading
					conn.Write([]byte("tail from=1\n"))
				case 1: // read the first event, then leave
					conn.Write([]byte("tail from=1\n"))
					conn.SetReadDeadline(time.Now().Add(30 * time.Second))
					if _, err := bufio.NewReader(conn).ReadBytes('\n'); err != nil {
						t.Errorf("tail from=1: %v", err)
					}
				case 2: // a live tail, abandoned with unread events behind it
					conn.Write([]byte("tail\nevents\n"))
				case 3: // a live tail that will never have anything to write
					conn.Write([]byte("tail kind=nothing.ever\n"))
				}
			}()
		}
		wg.Wait()
		// Writers are never held up by readers that left.
		w := dial(t, d)
		for i := range 100 {
			emit(t, w, fmt.Sprintf("emit app.after vanish/%d", i))
		}
		d.requireServing()
	})

	t.Run("1000 connections at once", func(t *testing.T) {
		raiseNoFile(t, 4096)
		const n = 1000
		conns := make([]net.Conn, 0, n)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range n {
			conn, err := net.DialTimeout("unix", d.Socket, 10*time.Second)
			if err != nil {
				t.Fatalf("connection %d: %v", len(conns), err)
			}
			conns = append(conns, conn)
		}
		collect(n, func(i int) {
			conn := conns[i]
			conn.SetDeadline(time.Now().Add(60 * time.Second))
			if _, err := conn.Write([]byte("status\n")); err != nil {
				t.Errorf("connection %d: write: %v", i, err)
				return
			}
			sc := bufio.NewScanner(conn)
			for sc.Scan() {
				var a wireAnswer
				if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
					t.Errorf("connection %d: answer %q: %v", i, sc.Bytes(), err)
					return
				}
				if a.Error != nil {
					t.Errorf("connection %d: status failed: %+v", i, a.Error)
					return
				}
				if a.Done {
					return
				}
			}
			t.Errorf("connection %d: no done: %v", i, sc.Err())
		})
		checkRSS(t, d)
	})

	d.requireServing()
	checkRSS(t, d)
	// Every connection that went away is closed by the daemon too; pebble
	// may hold a few more files than at the start.
	deadline := time.Now().Add(30 * time.Second)
	for n := fdCount(t, d.Pid()); n > baseFDs+30; n = fdCount(t, d.Pid()) {
		if time.Now().After(deadline) {
			t.Errorf("the daemon holds %d open files, %d at the start: connections of clients that left are never closed", n, baseFDs)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if log := d.Log(); strings.Contains(log, "panic:") || strings.Contains(log, "goroutine ") && strings.Contains(log, "[running]") {
		t.Errorf("the daemon logged a panic")
	}
	d.Stop()
}

// checkRSS requires the daemon's resident memory to stay under 200 MB (not
// for a race-built daemon, whose memory the race detector multiplies).
func checkRSS(t *testing.T, d *daemonProc) {
	t.Helper()
	rss := rssBytes(t, d.Pid())
	t.Logf("daemon RSS %.1f MB", float64(rss)/1e6)
	if binIsRace {
		return
	}
	if rss >= 200e6 {
		t.Errorf("daemon RSS %.1f MB, want < 200 MB", float64(rss)/1e6)
	}
}

// fdCount returns the number of open files of a process.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// raiseNoFile raises this process's open-file soft limit to at least n.
func raiseNoFile(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("open-file hard limit %d is below the %d this test needs", lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}
