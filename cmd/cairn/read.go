//go:build !thin

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/cairnhq/cairn/daemon"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/archive"
	"github.com/cairnhq/cairn/journal/filter"
	"github.com/cairnhq/cairn/scripts"
)

const readUsage = "usage: cairn read FILE [salvage] [since= until= from= to= kind= subject= limit=] [count] [where 'CEL'] [| chisel NAME ARGS…]"

// fileSelection is what `cairn read` was asked for: the filters of
// `events`, applied to a capture file.
type fileSelection struct {
	query journal.Query
	where *filter.Filter
	limit int64
	count bool
	pipe  *dsl.Pipe
}

// runRead runs `cairn read FILE [salvage] [EVENTS FILTERS…] [| chisel NAME
// ARGS…]` with no daemon, as `sysdig -r` does: the events of a capture file
// through the filters of `events`, printed as `cairn events` prints them or
// fed to a chisel run here. Every event is verified (its hash and its link)
// before it is shown. On damage the error names its offset and the exit
// code is 1; what needs the whole file (count, a chisel's on_capture_end)
// is not produced from a damaged one unless salvage is given, which ends
// the input at the damage and reports it after.
func (s *session) runRead(args []string) int {
	if len(args) == 0 || args[0] == "" {
		return s.usageErr("%s", readUsage)
	}
	path := args[0]
	salvage := false
	rest := []string{"events"}
	for i, w := range args[1:] {
		if w == "|" {
			rest = append(rest, args[1+i:]...)
			break
		}
		if w == "salvage" {
			salvage = true
			continue
		}
		rest = append(rest, w)
	}
	f, err := os.Open(path)
	if err != nil {
		return s.failed("read: %v", err)
	}
	defer f.Close()
	opts := archive.Options{Salvage: salvage}
	rd, err := archive.NewReader(bufio.NewReaderSize(f, 1<<20), opts)
	if err != nil {
		return s.failed("read %s: %v", path, err)
	}
	sel, err := readSelection(statement(rest), rd.Header())
	if err != nil {
		fmt.Fprintf(s.stderr, "cairn: read: %v\n", err)
		return exitUsage
	}
	feed := &fileFeed{rd: rd, sel: sel, salvage: salvage}
	if sel.pipe != nil {
		err = s.readChisel(feed, sel.pipe)
	} else {
		err = s.readEvents(feed, sel.count)
	}
	if feed.damage != nil {
		fmt.Fprintf(s.stderr, "cairn: read %s: %v\n", path, feed.damage)
		if salvage {
			fmt.Fprintf(s.stderr, "cairn: salvaged the %d events before the damage\n", feed.read)
		} else {
			fmt.Fprintln(s.stderr, "cairn: the events before the damage can be read with: cairn read FILE salvage …")
		}
		return exitDaemonError
	}
	if err != nil {
		fmt.Fprintf(s.stderr, "cairn: read %s: %v\n", path, err)
		var se *scripts.ScriptError
		if errors.As(err, &se) {
			return exitUsage
		}
		return exitDaemonError
	}
	fmt.Fprintf(s.stderr, "cairn: %s: %s\n", path, signedSummary(rd, feed.lastSeq))
	return exitOK
}

// signedSummary says who signed the chain of the events read, and how far:
// every signature read was verified (a bad one is damage, reported with
// its seq).
func signedSummary(rd *archive.Reader, lastRead int64) string {
	seq, key := rd.SignedThrough()
	switch {
	case seq == 0:
		return fmt.Sprintf("the chain is not signed (through seq %d)", lastRead)
	case seq < lastRead:
		return fmt.Sprintf("the chain is signed through seq %d by key %s; seqs %d–%d are not signed", seq, key, seq+1, lastRead)
	}
	return fmt.Sprintf("the chain is signed through seq %d by key %s", seq, key)
}

// readSelection parses the statement `events …` with the daemon's own verb
// table, so read takes exactly the filters events takes.
func readSelection(text string, hdr archive.Header) (*fileSelection, error) {
	stmts, err := dsl.Parse(text, daemon.VerbTable(engines.New()))
	if err != nil {
		return nil, err
	}
	if len(stmts) != 1 {
		return nil, errors.New("read takes one selection (no ';')")
	}
	st := stmts[0]
	sel := &fileSelection{count: st.Flags["count"], pipe: st.Pipe}
	if st.Flags["reverse"] {
		return nil, errors.New("reverse: a capture file is read in order")
	}
	if w, ok := st.Opt("stream"); ok && w.Text != hdr.Stream && w.Text != "*" {
		return nil, fmt.Errorf("stream=%s: the file holds the %s stream", w.Text, hdr.Stream)
	}
	now := time.Now()
	for name, dst := range map[string]*int64{"since": &sel.query.Since, "until": &sel.query.Until} {
		if w, ok := st.Opt(name); ok {
			t, err := w.Time(now)
			if err != nil {
				return nil, fmt.Errorf("%s: %s=%s: %v", w.Pos, name, w.Text, err)
			}
			*dst = t.UnixNano()
		}
	}
	for name, dst := range map[string]*int64{"from": &sel.query.From, "to": &sel.query.To, "limit": &sel.limit} {
		if w, ok := st.Opt(name); ok {
			n, err := strconv.ParseInt(w.Text, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%s: %s=%s: want a non-negative integer", w.Pos, name, w.Text)
			}
			*dst = n
		}
	}
	if w, ok := st.Opt("kind"); ok {
		sel.query.Kind = w.Text
	}
	if w, ok := st.Opt("subject"); ok {
		sel.query.Subject = w.Text
	}
	if sel.where, err = engines.Where(st); err != nil {
		return nil, err
	}
	return sel, nil
}

// fileFeed reads the selected events of a capture file. It is the Feed of
// a chisel run over the file, as the daemon's journal scan is one. Damage
// ends it: with salvage as the end of the input (io.EOF), otherwise as an
// error; either way it is kept in damage.
type fileFeed struct {
	rd      *archive.Reader
	sel     *fileSelection
	salvage bool
	matched int64
	read    int64 // events read (verified)
	lastSeq int64 // the last seq read
	damage  error
	done    bool
}

// filtered reports whether the selection needs more than a seq range.
func (f *fileFeed) filtered() bool {
	q := f.sel.query
	return q.Since != 0 || q.Until != 0 || q.Kind != "" || q.Subject != ""
}

func (f *fileFeed) Next(ctx context.Context) (*journal.Raw, error) {
	if f.done {
		return nil, io.EOF
	}
	q := f.sel.query
	check := f.filtered()
	for {
		if f.sel.limit > 0 && f.matched >= f.sel.limit {
			f.done = true
			return nil, io.EOF
		}
		if f.read&1023 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		raw, err := f.rd.Next()
		if err == io.EOF {
			f.done = true
			return nil, io.EOF
		}
		if err != nil {
			f.done = true
			var ce *archive.CorruptError
			if errors.As(err, &ce) || errors.Is(err, io.ErrUnexpectedEOF) {
				f.damage = err
				if f.salvage {
					return nil, io.EOF
				}
			}
			return nil, err
		}
		f.read++
		f.lastSeq = raw.Seq
		if q.To > 0 && raw.Seq > q.To {
			f.done = true
			// The rest of the file is not read, so it is not verified
			// either: as a daemon's to= does, this reads what was asked.
			return nil, io.EOF
		}
		if q.From > 0 && raw.Seq < q.From || check && !journal.MatchQuery(q, raw) {
			continue
		}
		if f.sel.where != nil {
			ok, err := f.sel.where.Match(context.Background(), raw)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		f.matched++
		return raw, nil
	}
}

// readEvents prints the selected events as `cairn events` prints them, or
// their count.
func (s *session) readEvents(feed *fileFeed, count bool) error {
	w := bufio.NewWriterSize(s.stdout, 64<<10)
	defer w.Flush()
	ctx := context.Background()
	for {
		raw, err := feed.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if count {
			continue
		}
		p, err := raw.JSON()
		if err != nil {
			return err
		}
		if s.json {
			w.Write(p)
		} else {
			w.WriteString(formatEvent(p))
		}
		if err := w.WriteByte('\n'); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if count && (feed.damage == nil || feed.salvage) {
		if code := s.printRow(map[string]int64{"count": feed.matched}); code != exitOK {
			return errors.New("write output")
		}
	}
	return nil
}

// readChisel runs a chisel over the file here, with the built-in chisels,
// /etc/cairn/chisels, or a local ./file.lua.
func (s *session) readChisel(feed *fileFeed, pipe *dsl.Pipe) error {
	lib := scripts.NewLibrary(scripts.Options{Paths: []string{"/etc/cairn/chisels"}})
	name := pipe.Chisel.Text
	var ch *scripts.Chisel
	var err error
	if isLocalScript(name) {
		src, rerr := os.ReadFile(name)
		if rerr != nil {
			return fmt.Errorf("read chisel: %w", rerr)
		}
		ch, err = lib.LoadSource(name, string(src))
	} else {
		ch, err = lib.Load(name)
	}
	if err != nil {
		return err
	}
	args := make([]string, len(pipe.Args))
	for i, a := range pipe.Args {
		args[i] = a.Text
	}
	w := bufio.NewWriterSize(s.stdout, 16<<10)
	defer w.Flush()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.interrupts:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = ch.Run(ctx, feed, scripts.RunOptions{Args: args, Output: func(line string) error {
		w.WriteString(line)
		return w.WriteByte('\n')
	}})
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	return err
}
