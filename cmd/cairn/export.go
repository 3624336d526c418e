//go:build !thin

package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/daemon"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/archive"
)

// usageErr prints a usage error and returns its exit code.
func (s *session) usageErr(format string, args ...any) int {
	fmt.Fprintf(s.stderr, "cairn: "+format+"\n", args...)
	return exitUsage
}

// failed prints an error that is not the user's statement's fault.
func (s *session) failed(format string, args ...any) int {
	fmt.Fprintf(s.stderr, "cairn: "+format+"\n", args...)
	return exitDaemonError
}

// parseSize reads a size such as 10MB, 1GiB, 500k or 4096 (bytes). The
// decimal units are powers of 1000, as sysdig's -C counts megabytes; the
// binary ones (KiB, MiB, GiB) powers of 1024.
func parseSize(s string) (int64, error) {
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(s[len(num):]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes with an optional unit (10MB, 1GiB)", s)
	}
	mult := map[string]int64{
		"": 1, "b": 1,
		"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q (B, KB, MB, GB, KiB, MiB, GiB)", s, unit)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// absPath resolves a client-side path against the CLI's working directory.
func absPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty file name")
	}
	return filepath.Abs(p)
}

// countingFile counts the bytes written to a part.
type countingFile struct {
	*os.File
	n *int64
}

func (f countingFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	*f.n += int64(n)
	return n, err
}

// Close makes the part durable before it counts as written.
func (f countingFile) Close() error {
	return errors.Join(f.File.Sync(), f.File.Close())
}

// runExport runs `journal export … to=FILE [max-size=] [max-files=]`: the
// daemon answers the stored records and the CLI writes the capture file.
func (s *session) runExport(args []string) int {
	var file string
	var maxSize int64
	var maxFiles int
	words := []string{"journal", "export"}
	for _, w := range args {
		name, value, isOpt := strings.Cut(w, "=")
		switch {
		case isOpt && name == "to":
			if _, err := strconv.ParseInt(value, 10, 64); err == nil {
				break // the last seq, for the daemon
			}
			if file != "" {
				return s.usageErr("journal export: give one to=FILE (a to= that is an integer is the last seq)")
			}
			p, err := absPath(value)
			if err != nil {
				return s.usageErr("journal export: to=: %v", err)
			}
			file, w = p, "to="+p
		case isOpt && name == "max-size":
			n, err := parseSize(value)
			if err != nil {
				return s.usageErr("journal export: max-size=: %v", err)
			}
			maxSize = n
		case isOpt && name == "max-files":
			n, err := strconv.Atoi(value)
			if err != nil || n <= 0 {
				return s.usageErr("journal export: max-files=%s: want a positive integer", value)
			}
			maxFiles = n
		}
		words = append(words, w)
	}
	if file == "" {
		return s.usageErr("journal export needs to=FILE, the capture file to write (a to= that is an integer is the last seq)")
	}
	c, err := s.client()
	if err != nil {
		return s.report(err)
	}
	st, err := c.Stream(context.Background(), statement(words))
	if err != nil {
		return s.report(err)
	}
	stop := s.cancelOnInterrupt(st)
	defer stop()

	a, err := st.Next()
	if err == io.EOF {
		return s.failed("journal export: the daemon answered nothing")
	}
	if err != nil {
		return s.report(err)
	}
	var head wire.ExportHead
	if err := json.Unmarshal(a.Row, &head); err != nil {
		return s.failed("journal export: unexpected first answer %s: %v", a.Row, err)
	}
	var anchor journal.Hash
	if err := anchor.UnmarshalText([]byte(head.Anchor)); err != nil {
		return s.failed("journal export: the daemon's anchor: %v", err)
	}
	var written int64
	create := func(i int) (io.WriteCloser, error) {
		f, err := os.Create(archive.PartName(file, i))
		if err != nil {
			return nil, err
		}
		return countingFile{File: f, n: &written}, nil
	}
	rw := archive.NewRotating(create, archive.Header{
		Node: head.Node, Stream: head.Stream, FirstSeq: head.FirstSeq, LastSeq: head.LastSeq, Anchor: anchor,
	}, maxSize, maxFiles)
	var events int64
	for {
		a, err := st.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			_ = rw.Close()
			s.report(err)
			return s.failed("journal export: %s is incomplete", file)
		}
		var row wire.ExportRecord
		if err := json.Unmarshal(a.Row, &row); err != nil {
			_ = rw.Close()
			return s.failed("journal export: unexpected answer %.200s: %v", a.Row, err)
		}
		if len(row.Sig) > 0 {
			sig, err := journal.DecodeSignature(row.Sig)
			if err == nil {
				err = rw.Sign(sig)
			}
			if err != nil {
				_ = rw.Close()
				return s.failed("journal export: signature of seq %d: %v", row.Seq, err)
			}
			continue
		}
		if err := rw.Write(&journal.Raw{Stream: head.Stream, Seq: row.Seq, Record: row.Record}); err != nil {
			_ = rw.Close()
			return s.failed("journal export: write %s: %v", file, err)
		}
		events++
	}
	if err := rw.Close(); err != nil {
		return s.failed("journal export: write %s: %v", file, err)
	}
	files := rw.Parts()
	if maxFiles > 0 {
		files = min(files, maxFiles)
	}
	return s.printRow(wire.ExportSummary{
		File: file, Stream: head.Stream, Files: files, Events: events,
		FirstSeq: head.FirstSeq, LastSeq: head.LastSeq, Bytes: written, Head: head.Head,
	})
}

// printRow prints one result row as the CLI prints a daemon's rows.
func (s *session) printRow(row any) int {
	p, err := json.Marshal(row)
	if err != nil {
		return s.failed("%v", err)
	}
	out := newPrinter(s.stdout, s.json)
	if err := out.add(client.Answer{Row: p}); err != nil {
		return s.failed("write output: %v", err)
	}
	if err := out.finish(); err != nil {
		return s.failed("write output: %v", err)
	}
	return exitOK
}

// cancelOnInterrupt cancels st when the user presses ^C, until stop is
// called.
func (s *session) cancelOnInterrupt(st *client.Stream) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-s.interrupts:
			_ = st.Cancel()
		case <-done:
		}
	}()
	return func() { close(done) }
}

// importPartSize bounds the compressed size of one part journal import
// sends: in base64 it stays well within the 4 MiB request line.
const importPartSize = 2 << 20

// importCutSize: once a part holds this much, it ends at the next signed
// head, so that the daemon, which wants every part to end at a head signed
// by a key it trusts, can vouch for each part on its own.
const importCutSize = importPartSize / 4

// importFile is a verified capture file waiting to be sent.
type importFile struct {
	path   string
	hdr    archive.Header
	events int64
}

// runImport runs `journal import FILE…`: each file is read and verified
// completely before anything is sent, then sent in parts (complete capture
// files of at most importPartSize bytes), in seq order, each of which the
// daemon verifies again and appends atomically.
func (s *session) runImport(args []string) int {
	var files []importFile
	force := false
	for _, a := range args {
		if a == "force" {
			force = true
			continue
		}
		if name, _, ok := strings.Cut(a, "="); ok && isOptionName(name) {
			return s.usageErr("journal import takes capture files only, not %q", a)
		}
		p, err := absPath(a)
		if err != nil {
			return s.usageErr("journal import: %v", err)
		}
		f, err := os.Open(p)
		if err != nil {
			return s.failed("journal import: %v", err)
		}
		hdr, n, err := archive.Verify(f)
		f.Close()
		if err != nil {
			return s.failed("journal import: %s: %v; nothing was imported", p, err)
		}
		files = append(files, importFile{path: p, hdr: hdr, events: n})
	}
	if len(files) == 0 {
		return s.usageErr("journal import needs FILE: a capture file written by journal export")
	}
	slices.SortStableFunc(files, func(a, b importFile) int {
		return cmp.Or(cmp.Compare(a.hdr.Stream, b.hdr.Stream), cmp.Compare(a.hdr.FirstSeq, b.hdr.FirstSeq))
	})
	c, err := s.client()
	if err != nil {
		return s.report(err)
	}
	out := newPrinter(s.stdout, s.json)
	for _, f := range files {
		row, err := s.importOne(c, f, force)
		if err != nil {
			_ = out.finish()
			return s.report(err)
		}
		p, _ := json.Marshal(row)
		if err := out.add(client.Answer{Row: p}); err != nil {
			return s.failed("write output: %v", err)
		}
	}
	if err := out.finish(); err != nil {
		return s.failed("write output: %v", err)
	}
	return exitOK
}

// partSender collects one part and sends it to the daemon when the
// RotatingWriter closes it.
type partSender struct {
	bytes.Buffer
	send func([]byte) error
}

func (p *partSender) Close() error { return p.send(p.Bytes()) }

// importOne sends one verified file. Its parts end at signed heads where
// the file has them; each is sent once the next one exists, with the flag
// more, and the last without it, so the daemon records the journal.import
// event once, after the whole file.
func (s *session) importOne(c *client.Client, f importFile, force bool) (wire.ImportSummary, error) {
	sum := wire.ImportSummary{File: f.path, Stream: f.hdr.Stream}
	src, err := os.Open(f.path)
	if err != nil {
		return sum, err
	}
	defer src.Close()
	// Verified already; the daemon verifies every part again.
	rd, err := archive.NewReader(src, archive.Options{SkipHashes: true})
	if err != nil {
		return sum, fmt.Errorf("%s: %w", f.path, err)
	}
	var sendErr error // the daemon's answer, unwrapped by the RotatingWriter
	var held []byte   // the last part made, not sent yet
	send := func(part []byte) error {
		if held != nil {
			first := int64(0)
			if sum.Events > 0 {
				first = sum.FirstSeq
			}
			sendErr = s.sendPart(c, f, &sum, held, partFlags{more: true, force: force, first: first})
		}
		held = bytes.Clone(part)
		return sendErr
	}
	create := func(int) (io.WriteCloser, error) { return &partSender{send: send}, nil }
	h := rd.Header()
	rw := archive.NewRotating(create, archive.Header{Node: h.Node, Stream: h.Stream, FirstSeq: h.FirstSeq, Anchor: h.Anchor}, importPartSize, 0)
	for {
		raw, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return sum, fmt.Errorf("%s changed while it was imported: %w", f.path, err)
		}
		if err := rw.Write(raw); err != nil {
			return sum, cmp.Or(sendErr, err)
		}
		sigs := rd.EventSignatures()
		for _, sig := range sigs {
			if err := rw.Sign(sig); err != nil {
				return sum, cmp.Or(sendErr, err)
			}
		}
		if written, pending := rw.PartSize(); len(sigs) > 0 && written+pending >= importCutSize {
			if err := rw.Cut(); err != nil {
				return sum, cmp.Or(sendErr, err)
			}
		}
	}
	if f.events == 0 {
		return sum, nil
	}
	if err := rw.Close(); err != nil {
		return sum, cmp.Or(sendErr, err)
	}
	first := int64(0)
	if sum.Events > 0 {
		first = sum.FirstSeq
	}
	return sum, s.sendPart(c, f, &sum, held, partFlags{force: force, first: first})
}

// partFlags are the words sent with one part.
type partFlags struct {
	more, force bool
	first       int64 // on every part after the first: the file's first seq
}

// sendPart sends one part (a complete capture file) and adds what the
// daemon imported to sum.
func (s *session) sendPart(c *client.Client, f importFile, sum *wire.ImportSummary, part []byte, pf partFlags) error {
	line := "journal import"
	if pf.more {
		line += " more"
	}
	if pf.force {
		line += " force"
	}
	if pf.first > 0 {
		line += " first=" + strconv.FormatInt(pf.first, 10)
	}
	line += " part=" + base64.StdEncoding.EncodeToString(part)
	if len(line) > client.MaxLine-64 {
		return fmt.Errorf("%s: an event near seq %d is too large to send over the socket (%d bytes in base64); restore the file with cairn daemon --restore", f.path, sum.LastSeq+1, len(line))
	}
	res, err := c.Do(context.Background(), line)
	if err != nil {
		if sum.Events > 0 {
			return fmt.Errorf("%w (seqs %d–%d of %s were imported before this part)", err, sum.FirstSeq, sum.LastSeq, f.path)
		}
		return err
	}
	sum.Parts++
	for _, r := range res.Rows {
		var row wire.ImportRow
		if err := json.Unmarshal(r, &row); err == nil && row.Events > 0 {
			if sum.FirstSeq == 0 {
				sum.FirstSeq = row.FirstSeq
			}
			sum.LastSeq, sum.Head, sum.Events = row.LastSeq, row.Head, sum.Events+row.Events
			sum.Signer, sum.Trusted = row.Signer, row.Trusted
		}
	}
	return nil
}

// restoreBackup imports the capture files of `cairn daemon --restore
// FILE[,FILE…]` before the daemon starts, with engines of their own (the
// daemon's start theirs afterwards on the restored state).
func restoreBackup(ctx context.Context, cfg daemon.Config, list string) error {
	var files []string
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := absPath(f)
		if err != nil {
			return err
		}
		files = append(files, p)
	}
	cfg.Modules = engines.New()
	reports, err := daemon.Restore(ctx, cfg, files)
	for _, r := range reports {
		cfg.Logger.Info("restored", "file", r.File, "stream", r.Stream, "first_seq", r.FirstSeq, "last_seq", r.LastSeq, "events", r.Events)
	}
	return err
}
