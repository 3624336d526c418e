package integration

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/archive"
)

// verifyOut is `journal verify`'s row.
type verifyOut struct {
	Stream   string `json:"stream"`
	OK       bool   `json:"ok"`
	Last     int64  `json:"last"`
	SignedTo int64  `json:"signed_to"`
	SignedBy string `json:"signed_by"`
	NodeKey  string `json:"node_key"`
}

// forge writes, as an attacker would with journal/archive's writer, a
// capture file of one event that continues d's audit stream (seq = tip+1,
// prev = the tip's hash) in the name of root's sshd, at time at (zero: the
// tip's time), signed by key when it is not nil.
func forge(t *testing.T, d *daemonProc, dir, name string, key ed25519.PrivateKey, at time.Time) string {
	t.Helper()
	tip := events(t, dial(t, d), "events reverse limit=1")
	if len(tip) != 1 {
		t.Fatalf("no tip: %+v", tip)
	}
	var prev journal.Hash
	if err := prev.UnmarshalText([]byte(tip[0].Hash)); err != nil {
		t.Fatal(err)
	}
	tipTime, err := time.Parse(time.RFC3339Nano, tip[0].Time)
	if err != nil {
		t.Fatal(err)
	}
	if at.IsZero() {
		at = tipTime
	}
	body, err := journal.EncodeBody(&journal.Body{
		Kind: "app.login", Subject: "root", Node: "victim",
		Actor: journal.Actor{UID: 0, GID: 0, PID: 1, User: "root", Comm: "sshd", Via: "socket"},
		Data:  map[string]any{"from": "10.0.0.66"},
	})
	if err != nil {
		t.Fatal(err)
	}
	seq := tip[0].Seq + 1
	h := journal.ChainHash(journal.Audit, seq, at.UnixNano(), prev, body)
	raw := &journal.Raw{Stream: journal.Audit, Seq: seq, Record: journal.EncodeRecord(at.UnixNano(), prev, h, body)}
	var buf bytes.Buffer
	w, err := archive.NewWriter(&buf, archive.Header{Node: "victim", Stream: journal.Audit})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if key != nil {
		if err := w.Sign(journal.SignHead(key, journal.Audit, seq, h, time.Now().UnixNano())); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSignedImport: issue 11 finding 3. A hand-made capture file that
// continues the stream is refused unless a trusted key signed it (the
// node's own, or one given with --trust-key), or force is given; a time in
// 2262 is refused even with force; an accepted import is followed by a
// journal.import event naming the importer and the signer; journal verify
// and cairn read name the key that signed.
func TestSignedImport(t *testing.T) {
	dir := t.TempDir()
	newKey := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	trusted, stranger := newKey(), newKey()
	trustFile := filepath.Join(dir, "peer.pub")
	if err := os.WriteFile(trustFile, journal.MarshalPublicKey(trusted.Public().(ed25519.PublicKey)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, withFlags("--trust-key", trustFile))

	fi, err := os.Stat(filepath.Join(d.Data, journal.NodeKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node.key: %v, %v; want mode 0600", fi, err)
	}
	pubPEM, err := os.ReadFile(filepath.Join(d.Data, journal.NodePubFile))
	if err != nil {
		t.Fatal(err)
	}
	own, err := journal.ParsePublicKeys(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	ownFP := journal.Fingerprint(own[0])
	trustedFP := journal.Fingerprint(trusted.Public().(ed25519.PublicKey))
	strangerFP := journal.Fingerprint(stranger.Public().(ed25519.PublicKey))

	refused := func(file, want string, args ...string) {
		t.Helper()
		before := cliOK(t, d, "-o", "json", "journal", "stats")
		r := cliIn(t, d, dir, append([]string{"journal", "import", file}, args...)...)
		if r.Code == 0 || !strings.Contains(r.Stderr, want) {
			t.Fatalf("import %s %v: exit %d, stderr %q; want a refusal saying %q", filepath.Base(file), args, r.Code, r.Stderr, want)
		}
		if after := cliOK(t, d, "-o", "json", "journal", "stats"); after != before {
			t.Fatalf("a refused import changed the journal:\n%s\nwas:\n%s", after, before)
		}
	}
	refused(forge(t, d, dir, "unsigned.cairn", nil, time.Time{}), "carries no signature")
	refused(forge(t, d, dir, "stranger.cairn", stranger, time.Time{}), strangerFP+", which this daemon does not trust")
	future := time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
	refused(forge(t, d, dir, "2262.cairn", trusted, future), "2262", "force")

	// Signed by the key given with --trust-key: accepted, and recorded.
	file := forge(t, d, dir, "peer.cairn", trusted, time.Time{})
	cliInOK(t, d, dir, "journal", "import", file)
	after := events(t, dial(t, d), "events reverse limit=2")
	if len(after) != 2 || after[0].Kind != "journal.import" || after[1].Kind != "app.login" || after[1].Actor.Comm != "sshd" {
		t.Fatalf("after the import: %+v", after)
	}
	rec := after[0]
	if rec.Actor.UID != os.Getuid() || rec.Actor.Via != "socket" || rec.Data["signer"] != trustedFP || rec.Data["trusted"] != true ||
		rec.Data["forced"] != false || rec.Data["first_seq"] != float64(after[1].Seq) || rec.Subject != trustedFP {
		t.Fatalf("journal.import: %+v; want the importer (uid %d) as actor and %s as signer", rec, os.Getuid(), trustedFP)
	}

	// Not trusted, but forced: accepted, and the record says so.
	cliInOK(t, d, dir, "journal", "import", forge(t, d, dir, "forced.cairn", stranger, time.Time{}), "force")
	rec = events(t, dial(t, d), "events reverse limit=1")[0]
	if rec.Kind != "journal.import" || rec.Data["signer"] != strangerFP || rec.Data["trusted"] != false || rec.Data["forced"] != true {
		t.Fatalf("a forced import's record: %+v", rec)
	}

	// journal verify names the keys: the node's own signs its latest head
	// once the stream is idle for a second.
	last := rec.Seq
	var row verifyOut
	for deadline := time.Now().Add(15 * time.Second); ; {
		rows := parseNDJSON[verifyOut](t, cliOK(t, d, "-o", "json", "journal", "verify", "stream=audit"))
		if len(rows) != 1 || !rows[0].OK {
			t.Fatalf("journal verify: %+v", rows)
		}
		row = rows[0]
		if row.SignedTo >= last && row.SignedBy == ownFP {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal verify: %+v; want the chain signed through %d by the node's key %s", row, last, ownFP)
		}
		time.Sleep(100 * time.Millisecond) // the signer's idle second is what is awaited
	}
	if row.NodeKey != ownFP {
		t.Fatalf("journal verify names node key %q, want %q", row.NodeKey, ownFP)
	}
	if out := cliOK(t, d, "journal", "verify", "stream=audit"); !strings.Contains(out, ownFP) {
		t.Fatalf("journal verify's table does not name the key:\n%s", out)
	}

	// An export is signed through its end by the node; cairn read says so.
	sum := exportTo(t, d, dir, "to=all.cairn")
	r := cliIn(t, nil, dir, "read", "all.cairn", "count")
	if r.Code != 0 || !strings.Contains(r.Stderr, "signed through seq "+strconv.FormatInt(sum.LastSeq, 10)+" by key "+ownFP) {
		t.Fatalf("cairn read: exit %d, stderr %q; want it signed through %d by %s", r.Code, r.Stderr, sum.LastSeq, ownFP)
	}
}
