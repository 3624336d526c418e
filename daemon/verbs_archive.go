package daemon

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/archive"
)

// archiveVerbs move events between the journal and capture files
// (journal/archive). The files themselves live on the client: export
// answers the stored records and the CLI writes them; the CLI reads and
// verifies a file and import receives it in parts. The daemon never opens a
// path a client names.
func archiveVerbs() []serverVerb {
	return []serverVerb{
		{Spec: dsl.Spec{
			Verb:    "journal export",
			Access:  dsl.AccessRead,
			Summary: "export an unbroken range of a stream's events to a capture file",
			Help: "journal export answers the stored records of a range of seqs, exactly as stored, for the\n" +
				"CLI to write as a capture file (cairn read, journal import, cairn daemon --restore). The\n" +
				"first row describes the range (stream, node, first_seq, last_seq, events, anchor, head),\n" +
				"each further row is one event {seq, record} with the record in base64. A capture file's\n" +
				"chain must be whole, so only seq and time bounds select: filter when reading.\n" +
				"to= is a seq when it is an integer, else the file (a client-side path; write ./123 for a\n" +
				"file named 123). max-size= and max-files= rotate the file as sysdig's -C and -W do\n" +
				"(FILE, FILE1, FILE2…).\n\n" +
				"  journal export to=audit.cairn\n" +
				"  journal export stream=capture since=1h to=/tmp/cap.cairn max-size=100MB max-files=5\n" +
				"  journal export from=1000 to=2000 to=slice.cairn",
			Options: []dsl.Option{
				{Name: "stream", Help: "audit (default) or capture"},
				{Name: "from", Kind: dsl.Int, Help: "first seq"},
				{Name: "to", Repeatable: true, Meta: "SEQ|FILE", Help: "last seq (an integer), or the file to write (client side)"},
				{Name: "since", Kind: dsl.Time, Help: "events at or after TIME"},
				{Name: "until", Kind: dsl.Time, Help: "events at or before TIME"},
				{Name: "max-size", Meta: "SIZE", Help: "rotate to a new part beyond SIZE (10MB, 1GiB; client side)"},
				{Name: "max-files", Kind: dsl.Int, Help: "keep only the last N parts, as a ring (client side)"},
				{Name: "kind", Help: "refused: a capture file holds every event of its range"},
				{Name: "subject", Help: "refused: a capture file holds every event of its range"},
			},
			Where:  true,
			Stream: true,
			Client: true,
		}, run: (*Server).runJournalExport},
		{Spec: dsl.Spec{
			Verb:    "journal import",
			Access:  dsl.AccessHost,
			Summary: "append a capture file's events verbatim, continuing the stream",
			Help: "journal import FILE: the CLI reads and verifies FILE completely, then sends it in parts\n" +
				"(part= carries one complete capture file in base64, at most 4 MiB per line). The daemon\n" +
				"verifies each part again and appends its events with their own seqs, times and hashes;\n" +
				"the first must continue the stream (its prev is the stream's last hash), so an import\n" +
				"never rewrites history. Each part must end at a chain head signed by a trusted key (this\n" +
				"node's, or one given with cairn daemon --trust-key) unless force is given; events from more\n" +
				"than five minutes in the future are refused even then. A journal.import event after the\n" +
				"imported events records the importer, the signer and the range. A backup is restored into\n" +
				"an empty data directory with `cairn daemon --restore FILE`.\n\n" +
				"  journal import capture.cairn\n  journal import part1.cairn part1.cairn1\n  journal import other-node.cairn force",
			Args: []dsl.Arg{{Name: "FILE", Variadic: true, Help: "capture files, read by the CLI"}},
			Options: []dsl.Option{{Name: "part", Help: "one complete capture file in base64 (sent by the CLI)"},
				{Name: "first", Kind: dsl.Int, Help: "the file's first seq, on its last part (sent by the CLI)"}},
			Flags: []dsl.Flag{{Name: "force", Help: "import a file no trusted key signed (still never from the future)"},
				{Name: "more", Help: "more parts of the file follow (sent by the CLI)"}},
			Client: true,
		}, run: (*Server).runJournalImport},
	}
}

// exportRecord is one event row of an export: the record exactly as stored.
type exportRecord struct {
	seq    int64
	record []byte
}

// MarshalJSON writes {"seq":N,"record":"BASE64"} without reflection: an
// export is mostly these rows.
func (e exportRecord) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 32+base64.StdEncoding.EncodedLen(len(e.record)))
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, e.seq, 10)
	b = append(b, `,"record":"`...)
	b = base64.StdEncoding.AppendEncode(b, e.record)
	return append(b, `"}`...), nil
}

// exportSig is a signature row of an export: a signed head (the
// journal.Signature encoding, base64 in JSON) that follows its event's row.
type exportSig struct {
	Seq int64  `json:"seq"`
	Sig []byte `json:"sig"`
}

func sigBytes(sig journal.Signature) []byte {
	b, _ := sig.AppendBinary(nil)
	return b
}

// exportSignEvery: an export signs a head of its own at least this often.
const exportSignEvery = 1024

// errExportSelect explains why an export takes no kind, subject or where.
const errExportSelect = "journal export writes an unbroken range of seqs (a capture file's hash chain must be whole), so it cannot select by %s; select with from=, to=, since=, until= and filter when reading: cairn read FILE kind=… where '…'"

func (s *Server) runJournalExport(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	for _, name := range []string{"kind", "subject"} {
		if w, ok := st.Opt(name); ok {
			return engines.Errorf(wire.InvalidArgument, w, errExportSelect, name+"=")
		}
	}
	if st.Where != nil {
		return engines.Errorf(wire.InvalidArgument, *st.Where, errExportSelect, "where")
	}
	if st.Filter != nil {
		return engines.Errorf(wire.InvalidArgument, *st.Filter, errExportSelect, "filter")
	}
	name := journal.Audit
	if w, ok := st.Opt("stream"); ok {
		if s.journal.Stream(w.Text) == nil {
			return engines.Errorf(wire.InvalidArgument, w, "journal export reads one stream: %s, not %q", strings.Join(s.journal.Names(), ", "), w.Text)
		}
		name = w.Text
	}
	q, err := exportQuery(st)
	if err != nil {
		return err
	}
	sn := s.journal.Stream(name).Snapshot()
	defer sn.Close()

	// The last seq first, so the header row can promise it.
	var last *journal.Raw
	rq := q
	rq.Reverse = true
	it := sn.Scan(rq)
	if it.Next() {
		last = it.Raw().Clone()
	}
	if err := errors.Join(it.Err(), it.Close()); err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	head := wire.ExportHead{Stream: name, Node: s.node}
	if last == nil {
		return r.Row(head)
	}
	q.To = last.Seq
	stream := s.journal.Stream(name)
	sigs, err := stream.Signatures(q.From, last.Seq)
	if err != nil {
		return fmt.Errorf("read signatures: %w", err)
	}
	own := s.journal.PublicKey()
	it = sn.Scan(q)
	defer it.Close()
	var prev int64
	for i := 0; it.Next(); i++ {
		raw := it.Raw()
		if i == 0 {
			head.FirstSeq, head.LastSeq, head.Events = raw.Seq, last.Seq, last.Seq-raw.Seq+1
			head.Anchor, head.Head = raw.Prev().String(), last.Hash().String()
			if err := r.Row(head); err != nil {
				return err
			}
		} else if raw.Seq != prev+1 {
			return fmt.Errorf("export %s: seq %d follows %d", name, raw.Seq, prev)
		}
		if i&1023 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := r.Row(exportRecord{seq: raw.Seq, record: raw.Record}); err != nil {
			return err
		}
		prev = raw.Seq
		for len(sigs) > 0 && sigs[0].Seq < raw.Seq {
			sigs = sigs[1:] // of a seq the scan did not give (not in range)
		}
		signed := false
		for ; len(sigs) > 0 && sigs[0].Seq == raw.Seq; sigs = sigs[1:] {
			// Never sign on top of a chain that contradicts its own
			// signatures: journal verify says more.
			if err := sigs[0].Check(name); err != nil || sigs[0].Hash != raw.Hash() {
				return wire.Errorf(wire.DataLoss, "export %s: the stored signature of seq %d does not match the event (run journal verify); nothing more is exported", name, raw.Seq)
			}
			if err := r.Row(exportSig{Seq: raw.Seq, Sig: sigBytes(sigs[0])}); err != nil {
				return err
			}
			signed = signed || own != nil && sigs[0].Key.Equal(own)
		}
		// The node attests its own chain every exportSignEvery events and
		// at the end, so that the file is signed through its last event
		// and journal import can send it in parts that each end signed.
		if !signed && ((i+1)%exportSignEvery == 0 || raw.Seq == last.Seq) {
			if sig, ok := stream.SignHead(raw.Seq, raw.Hash()); ok {
				if err := r.Row(exportSig{Seq: raw.Seq, Sig: sigBytes(sig)}); err != nil {
					return err
				}
			}
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	if prev != last.Seq {
		return fmt.Errorf("export %s: ended at seq %d, want %d", name, prev, last.Seq)
	}
	return nil
}

// exportQuery reads an export's seq and time bounds. A to= that is an
// integer is the last seq; any other to= is the client's file.
func exportQuery(st *dsl.Statement) (journal.Query, error) {
	var q journal.Query
	if w, ok := st.Opt("from"); ok {
		n, err := w.Int()
		if err != nil || n < 0 {
			return q, engines.Errorf(wire.InvalidArgument, w, "from=%s: want a non-negative integer", w.Text)
		}
		q.From = n
	}
	for _, w := range st.Options["to"] {
		n, err := strconv.ParseInt(w.Text, 10, 64)
		if err != nil {
			continue // the file
		}
		if n < 0 || q.To != 0 {
			return q, engines.Errorf(wire.InvalidArgument, w, "to=%s: give one last seq (a non-negative integer) and at most one file", w.Text)
		}
		q.To = n
	}
	now := time.Now()
	for name, dst := range map[string]*int64{"since": &q.Since, "until": &q.Until} {
		if w, ok := st.Opt(name); ok {
			t, err := w.Time(now)
			if err != nil {
				return q, engines.Errorf(wire.InvalidArgument, w, "%v", err)
			}
			*dst = t.UnixNano()
		}
	}
	return q, nil
}

func (s *Server) runJournalImport(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	if len(st.Rest) > 0 {
		return engines.Errorf(wire.InvalidArgument, st.Rest[0],
			"the daemon does not open files a client names: run `cairn journal import FILE`, which verifies the file and sends it in part= options")
	}
	w, ok := st.Opt("part")
	if !ok {
		return wire.Errorf(wire.InvalidArgument, "journal import needs part=BASE64 (one complete capture file); the cairn CLI sends it: cairn journal import FILE")
	}
	data, err := base64.StdEncoding.DecodeString(w.Text)
	if err != nil {
		return engines.Errorf(wire.InvalidArgument, w, "part=: not base64: %v", err)
	}
	hdr, raws, sigs, err := readPart(bytes.NewReader(data))
	if err != nil {
		return engines.Errorf(wire.InvalidArgument, w, "part=: %v", err)
	}
	if len(raws) == 0 {
		return r.Row(wire.ImportRow{Stream: hdr.Stream})
	}
	first := raws[0].Seq
	if w, ok := st.Opt("first"); ok {
		n, err := w.Int()
		if err != nil || n <= 0 || n > first {
			return engines.Errorf(wire.InvalidArgument, w, "first=%s: the file's first seq, at most this part's first (%d)", w.Text, first)
		}
		first = n
	}
	tr := s.judgeSigner(raws[len(raws)-1], sigs)
	force := st.Flags["force"]
	opts := journal.ImportOptions{Signatures: sigs}
	// In the committer, once the part is known to continue the stream: a
	// file that does not is refused for that, whoever signed it.
	opts.Accept = func() error {
		if tr.trusted || force {
			return nil
		}
		return wire.Errorf(wire.FailedPrecondition, "import: %s; nothing was imported. Trust the signing node with `cairn daemon --trust-key FILE` (its <data>/node.pub), or import anyway with `journal import FILE force`", tr.why)
	}
	last := raws[len(raws)-1]
	actor := r.Actor()
	record := &journal.Body{
		Kind:    ImportKind,
		Subject: tr.signer,
		Actor:   actor,
		Data: map[string]any{
			"stream":    hdr.Stream,
			"first_seq": first,
			"last_seq":  last.Seq,
			"events":    last.Seq - first + 1,
			"head":      last.Hash().String(),
			"importer":  importerName(actor),
			"signer":    tr.signer,
			"signed_to": tr.signedTo,
			"trusted":   tr.trusted,
			"forced":    force && !tr.trusted,
			"from_node": hdr.Node,
			"complete":  !st.Flags["more"],
		},
	}
	more := st.Flags["more"]
	if more {
		// Owed if no later part completes the import: written before
		// anything else the stream takes, or when this connection ends.
		opts.Pending = record
	} else {
		opts.After = record
	}
	row, err := importRaws(ctx, s.journal, hdr, raws, opts)
	if err != nil {
		return err
	}
	if rq, ok := r.(*request); ok && more {
		rq.conn.owesImport(hdr.Stream)
	}
	row.Signer, row.SignedTo, row.Trusted = tr.signer, tr.signedTo, tr.trusted
	s.log.Info("journal import", "stream", hdr.Stream, "first_seq", raws[0].Seq, "last_seq", last.Seq,
		"signer", tr.signer, "trusted", tr.trusted, "forced", force && !tr.trusted, "uid", r.Actor().UID, "more", st.Flags["more"])
	return r.Row(row)
}

// ImportKind is the kind of the event that records a journal import, right
// after the imported events.
const ImportKind = "journal.import"

// importerName names the actor of an import for people: user, else uid.
func importerName(a journal.Actor) string {
	if a.User != "" {
		return a.User
	}
	return "uid " + strconv.Itoa(a.UID)
}

// signerTrust is what the daemon makes of a part's signatures.
type signerTrust struct {
	signer   string // fingerprint of the key that signed the part's last event ("" if none did)
	signedTo int64  // the last seq of the part whose head is signed (by anyone)
	trusted  bool   // signer is this node's key or a --trust-key
	why      string // why not trusted
}

// judgeSigner decides whether the part ending with last is vouched for by
// a trusted key: a signature of its last event, which covers every event
// before it through the hash chain.
func (s *Server) judgeSigner(last *journal.Raw, sigs []journal.Signature) signerTrust {
	var tr signerTrust
	for _, sig := range sigs {
		tr.signedTo = max(tr.signedTo, sig.Seq)
		if sig.Seq != last.Seq {
			continue
		}
		if tr.signer == "" || !tr.trusted {
			tr.signer, tr.trusted = sig.Signer(), s.trusts(sig.Key)
		}
	}
	switch {
	case tr.trusted:
	case tr.signer != "":
		tr.why = fmt.Sprintf("the capture file's seq %d is signed by key %s, which this daemon does not trust", last.Seq, tr.signer)
	case tr.signedTo > 0:
		tr.why = fmt.Sprintf("the capture file is signed only up to seq %d, not through its last seq %d", tr.signedTo, last.Seq)
	default:
		tr.why = fmt.Sprintf("the capture file (through seq %d) carries no signature", last.Seq)
	}
	return tr
}

// trusts reports whether pub is this node's key or one given with
// --trust-key.
func (s *Server) trusts(pub ed25519.PublicKey) bool {
	if own := s.journal.PublicKey(); own != nil && own.Equal(pub) {
		return true
	}
	return slices.ContainsFunc(s.cfg.TrustKeys, func(k ed25519.PublicKey) bool { return k.Equal(pub) })
}

// readPart reads and verifies a whole capture file into memory.
func readPart(src io.Reader) (archive.Header, []*journal.Raw, []journal.Signature, error) {
	rd, err := archive.NewReader(src)
	if err != nil {
		return archive.Header{}, nil, nil, err
	}
	var raws []*journal.Raw
	for {
		raw, err := rd.Next()
		if err == io.EOF {
			return rd.Header(), raws, rd.Signatures(), nil
		}
		if err != nil {
			return rd.Header(), nil, nil, err
		}
		raws = append(raws, raw.Clone())
	}
}

// importRaws appends verified events to the stream the header names.
func importRaws(ctx context.Context, j *journal.Journal, hdr archive.Header, raws []*journal.Raw, opts journal.ImportOptions) (wire.ImportRow, error) {
	st := j.Stream(hdr.Stream)
	if st == nil {
		return wire.ImportRow{}, wire.Errorf(wire.InvalidArgument, "the capture file is of stream %q, which this cairn does not have", hdr.Stream)
	}
	row := wire.ImportRow{Stream: hdr.Stream}
	if len(raws) == 0 {
		return row, nil
	}
	if err := checkSkew(raws, time.Now()); err != nil {
		return row, err
	}
	c, err := st.ImportWith(ctx, raws, opts)
	if err != nil {
		return row, err
	}
	c = c[:len(raws)] // without the After event
	row.FirstSeq, row.LastSeq, row.Events = c[0].Seq, c[len(c)-1].Seq, int64(len(c))
	row.Head = c[len(c)-1].Hash.String()
	return row, nil
}

// RestoreReport describes one capture file Restore imported.
type RestoreReport struct {
	File              string
	Stream            string
	FirstSeq, LastSeq int64
	Events            int64
}

// restoreBatch is how many events Restore commits at a time.
const restoreBatch = 4096

// Restore imports capture files (a backup made with journal export) into
// the journal in cfg.DataDir before a daemon runs on it, so that the
// restored events keep their seqs and hashes and nothing (not even
// daemon.start) comes before them. Each file is verified completely before
// anything is written. The files are imported in seq order per stream;
// the first of each stream must go into an empty stream, the others must
// continue it. The engines of cfg.Modules fold the events as they are
// imported; pass fresh modules (engines.New()), not the ones Run will
// start. Restore holds the data directory's lock while it runs.
func Restore(ctx context.Context, cfg Config, files []string) ([]RestoreReport, error) {
	type input struct {
		file string
		hdr  archive.Header
	}
	inputs := make([]input, 0, len(files))
	for _, f := range files {
		hdr, n, err := verifyFile(f)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			inputs = append(inputs, input{file: f, hdr: hdr})
		}
	}
	slices.SortStableFunc(inputs, func(a, b input) int {
		return cmp.Or(cmp.Compare(a.hdr.Stream, b.hdr.Stream), cmp.Compare(a.hdr.FirstSeq, b.hdr.FirstSeq))
	})

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	folds := map[string][]journal.Engine{}
	for _, m := range cfg.Modules {
		for stream, es := range m.Engines() {
			folds[stream] = append(folds[stream], es...)
		}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	node, _ := os.Hostname()
	// The restored heads keep the signatures the backup carries, and this
	// data directory's key (created here if need be) signs the restored head.
	key, err := journal.LoadNodeKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	j, err := journal.Open(journal.Options{Dir: cfg.DataDir, Node: node, Logger: logger.With("component", "journal"), Reserve: cfg.Reserve, Engines: folds,
		Signing: journal.Signing{Key: key}})
	if err != nil {
		return nil, fmt.Errorf("open journal in %s: %w", cfg.DataDir, err)
	}
	defer j.Close()
	for _, name := range journal.Streams {
		st := j.Stream(name).Stats()
		if st.LastSeq != 0 && slices.ContainsFunc(inputs, func(in input) bool { return in.hdr.Stream == name }) {
			return nil, wire.Errorf(wire.FailedPrecondition,
				"restore: the %s stream in %s already holds events (seqs %d–%d); restore into an empty data directory, or continue a stream with `cairn journal import FILE`",
				name, cfg.DataDir, st.FirstSeq, st.LastSeq)
		}
	}
	var reports []RestoreReport
	for _, in := range inputs {
		rep, err := restoreFile(ctx, j, in.file)
		if err != nil {
			return reports, fmt.Errorf("restore %s: %w", in.file, err)
		}
		reports = append(reports, rep)
	}
	return reports, j.Close()
}

// verifyFile verifies a whole capture file.
func verifyFile(path string) (archive.Header, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return archive.Header{}, 0, err
	}
	defer f.Close()
	hdr, n, err := archive.Verify(f)
	if err != nil {
		return hdr, n, fmt.Errorf("%s: %w", path, err)
	}
	return hdr, n, nil
}

// restoreFile imports one verified capture file in batches.
func restoreFile(ctx context.Context, j *journal.Journal, path string) (RestoreReport, error) {
	rep := RestoreReport{File: path}
	f, err := os.Open(path)
	if err != nil {
		return rep, err
	}
	defer f.Close()
	rd, err := archive.NewReader(f)
	if err != nil {
		return rep, err
	}
	rep.Stream = rd.Header().Stream
	batch := make([]*journal.Raw, 0, restoreBatch)
	var sigs []journal.Signature
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		row, err := importRaws(ctx, j, rd.Header(), batch, journal.ImportOptions{Signatures: sigs})
		if err != nil {
			return err
		}
		sigs = nil
		if rep.FirstSeq == 0 {
			rep.FirstSeq = row.FirstSeq
		}
		rep.LastSeq, rep.Events = row.LastSeq, rep.Events+row.Events
		batch = batch[:0]
		return nil
	}
	for {
		raw, err := rd.Next()
		if err == io.EOF {
			return rep, flush()
		}
		if err != nil {
			return rep, err
		}
		batch = append(batch, raw.Clone())
		sigs = append(sigs, rd.EventSignatures()...)
		if len(batch) == restoreBatch {
			if err := flush(); err != nil {
				return rep, err
			}
		}
	}
}

// maxImportSkew is how far ahead of the daemon's clock an imported event's
// time may be: a stream's times never decrease, so one event stamped in the
// far future would drag the time of every later event with it.
const maxImportSkew = 5 * time.Minute

// checkSkew refuses events whose time is beyond maxImportSkew ahead of now.
func checkSkew(raws []*journal.Raw, now time.Time) error {
	limit := now.Add(maxImportSkew).UnixNano()
	for _, r := range raws {
		if t := r.Time(); t > limit {
			return wire.Errorf(wire.InvalidArgument,
				"import: seq %d's time %s is more than %v ahead of this daemon's clock (%s): a capture file cannot come from the future, and a stream's times never go back; nothing was imported",
				r.Seq, time.Unix(0, t).UTC().Format(time.RFC3339), maxImportSkew, now.UTC().Format(time.RFC3339))
		}
	}
	return nil
}
