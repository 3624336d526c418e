package logs

import (
	"bytes"
	"encoding/hex"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/cairnhq/cairn/journal"
)

// viaMaps decodes PackedForward entries the way the other modes do, into
// Go maps with decodeEntry, and encodes each record as the journal encodes
// a body's values: what the transcoder must write, byte for byte.
func viaMaps(b []byte) (raws [][]byte, times []time.Time, bad int, err error) {
	var fm forwardMsg
	br := bytes.NewReader(b)
	d := msgpack.NewDecoder(br)
	for br.Len() > 0 {
		if err := fm.decodeEntry(d); err != nil {
			return nil, nil, 0, err
		}
	}
	for _, r := range fm.records {
		enc, err := journal.EncodeValue(r.Fields)
		if err != nil {
			return nil, nil, 0, err
		}
		raws = append(raws, enc)
		times = append(times, r.Time)
	}
	return raws, times, fm.bad, nil
}

// checkTranscode compares the transcoder with viaMaps on PackedForward
// entries b: the same records, bytes, times and count of skipped entries,
// or an error from both.
func checkTranscode(t *testing.T, b []byte) {
	t.Helper()
	want, wantTimes, wantBad, wantErr := viaMaps(b)
	fm := forwardMsg{tag: "t"}
	err := fm.decodePacked(b)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("entries %x: transcoder error %v, via maps %v", b, err, wantErr)
	}
	if err != nil {
		return
	}
	if len(fm.records) != len(want) || fm.bad != wantBad {
		t.Fatalf("entries %x: %d records (%d bad), via maps %d (%d bad)", b, len(fm.records), fm.bad, len(want), wantBad)
	}
	for i, r := range fm.records {
		if !bytes.Equal(r.raw, want[i]) {
			t.Fatalf("entries %x, record %d:\n transcoded %x\n   via maps %x", b, i, r.raw, want[i])
		}
		// A nil time is the time of reading: not compared.
		if !r.Time.Equal(wantTimes[i]) && wantTimes[i].Sub(r.Time).Abs() > time.Minute {
			t.Fatalf("entries %x, record %d: time %v, via maps %v", b, i, r.Time, wantTimes[i])
		}
		// The journal reads what it stores: the record decodes.
		var m map[string]any
		if err := journal.DecodeValue(r.raw, &m); err != nil {
			t.Fatalf("entries %x, record %d: %v", b, i, err)
		}
	}
}

// transcodeSeeds are PackedForward entries covering every msgpack type a
// record can hold.
func transcodeSeeds(t testing.TB) [][]byte {
	t.Helper()
	t0 := time.Unix(1700000000, 123456789)
	nested := map[string]any{"a": []any{int64(1), "two", 3.5, nil, true, false, map[string]any{"z": "deep"}}}
	recs := []any{
		map[string]any{"level": "info", "n": 3, "msg": strings.Repeat("x", 800)},
		map[string]any{"b": "short", "aa": 1, "a": 2, "": "empty key", "ü": "é"},
		map[string]any{"ints": []any{0, 23, 24, 255, 256, 65535, 65536, int64(math.MaxUint32), int64(math.MaxUint32) + 1,
			int64(math.MaxInt64), -1, -24, -25, -256, -257, int64(math.MinInt64), int8(-5), uint8(200), uint16(60000),
			uint32(4000000000), uint64(math.MaxUint64)}},
		map[string]any{"floats": []any{0.0, math.Copysign(0, -1), 1.0, 1.5, 65504.0, 65505.0, 1e-7, 5.960464477539063e-08,
			6.103515625e-05, 3.4028234663852886e+38, 1e300, math.Inf(1), math.Inf(-1), math.NaN(), float32(12.5), float32(0.1), 0.1,
			-2.5, 1.0 / 3}},
		map[string]any{"bin": []byte("utf8 bytes"), "badbin": []byte{0xff, 0xfe}, "badstr": "\xff\xfe", "\xffkey": 1},
		nested,
		map[string]any{"ts": time.Unix(1700000000, 5).UTC()},
		map[string]any{"evt": msgpack.RawMessage{0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 2}},
		"not a map",
		nil,
		[]any{1, 2},
		map[string]any{},
	}
	var seeds [][]byte
	var all []byte
	for _, r := range recs {
		e, err := msgpack.Marshal([]any{extTime(t0), r})
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, e)
		all = append(all, e...)
	}
	seeds = append(seeds, all)
	// Keys that are not strings, duplicate keys, maps and arrays of 16
	// bits of length, each kind of time.
	for _, h := range []string{
		"92" + "01" + "83" + "01" + "a161" + "c3" + "a2" + "cb3ff8000000000000" + "a0",
		"92" + "01" + "83" + "a161" + "01" + "a161" + "02" + "a162" + "03",
		"92" + "01" + "81" + "c403616263" + "01",
		"92" + "01" + "81" + "c402ff00" + "01",
		"92" + "01" + "81" + "92" + "0102" + "01",
		"92" + "01" + "81" + "81a17801" + "01",
		"92" + "cb41d954fc4000000000" + "81a16101",
		"92" + "c0" + "81a16101",
		"92" + "ca4f000000" + "81a16101",
		"92" + "d6ff65537500" + "81a16101",
		"92" + "c70c" + "ff" + "00000005" + "0000000065537500" + "81a16101",
		"92" + "d70100000000" + "00000000" + "81a16101",
		"92" + "a3616263" + "81a16101",
		"92" + "cf8000000000000000" + "81a16101",
		"92" + "01" + "de0002" + "a161" + "01" + "a162" + "dc0002" + "0102",
		"92" + "01" + "df00000001" + "a161" + "dd00000000",
		"92" + "01" + "81a161" + "c1",
		"92" + "01" + "82a161",
		"92" + "01" + "8fa161",
		"93" + "01" + "80" + "80",
		"92" + "01" + "81a161" + "d4" + "05",
	} {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	deep := []byte{0x92, 0x01}
	for range maxDepth + 1 {
		deep = append(deep, 0x81, 0xa1, 'k')
	}
	seeds = append(seeds, append(deep, 0x01))
	return seeds
}

// TestTranscodeMatchesDecode: a PackedForward record transcoded to CBOR is
// the record decodeEntry decodes, as the journal encodes it, byte for
// byte, for every type of value; what one refuses, the other refuses.
func TestTranscodeMatchesDecode(t *testing.T) {
	for _, b := range transcodeSeeds(t) {
		checkTranscode(t, b)
	}
}

// TestTranscodeUTF8: strings that are not UTF-8 are stored as bytes and
// such keys with U+FFFD, so that the stored event can be read.
func TestTranscodeUTF8(t *testing.T) {
	e, err := msgpack.Marshal([]any{1, map[string]any{"s": "a\xffb", "\xffk": 1}})
	if err != nil {
		t.Fatal(err)
	}
	fm := forwardMsg{tag: "t"}
	if err := fm.decodePacked(e); err != nil || len(fm.records) != 1 {
		t.Fatalf("%+v %v", fm, err)
	}
	got := recordFields(t, fm.records[0])
	if !bytes.Equal(got["s"].([]byte), []byte("a\xffb")) || got["\ufffdk"] != int64(1) {
		t.Fatalf("fields %#v", got)
	}
}

// FuzzTranscode: any PackedForward entries transcode to what decodeEntry
// and the journal's encoding make of them, or both refuse them.
func FuzzTranscode(f *testing.F) {
	for _, b := range transcodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkTranscode(t, b)
	})
}

// TestRoutesOnTranscodedRecords: a route's where and set see a
// PackedForward record's fields, decoded from its CBOR, and a set field is
// stored with it.
func TestRoutesOnTranscodedRecords(t *testing.T) {
	var entries []byte
	for _, lvl := range []string{"info", "error", "error"} {
		e, err := msgpack.Marshal([]any{1700000000, map[string]any{"level": lvl, "n": 1}})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e...)
	}
	fm := forwardMsg{tag: "app.web"}
	if err := fm.decodePacked(entries); err != nil || len(fm.records) != 3 {
		t.Fatalf("%+v %v", fm, err)
	}
	r, err := compileRoute(routeConfig{Name: "errs", Match: "app.**", Where: `record.level == "error"`, To: "journal", Set: map[string]string{"team": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	var rt routeTable
	rt.add(r)
	st := newStats()
	recs := rt.apply(fm.records, st, "forward")
	if len(recs) != 2 {
		t.Fatalf("%d records kept, want the 2 errors", len(recs))
	}
	for _, b := range recordBodies("n", inputActor("forward", "a"), source{input: "forward", uid: -1}, recs) {
		enc, err := journal.EncodeBody(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := journal.DecodeBody(enc)
		if err != nil {
			t.Fatal(err)
		}
		rec := got.Data["record"].(map[string]any)
		if rec["team"] != "web" || rec["level"] != "error" || rec["n"] != int64(1) || got.Data["route"] != "errs" {
			t.Fatalf("stored %#v", got.Data)
		}
	}
}

// TestEncodeRecordsMatchesJournal: the logs.record bodies encodeRecords
// writes are what the journal's EncodeBody writes for recordBodies' Bodies
// of the same records, byte for byte, whatever the source, actor and
// route.
func TestEncodeRecordsMatchesJournal(t *testing.T) {
	var entries []byte
	for _, b := range transcodeSeeds(t) {
		var fm forwardMsg
		if fm.decodePacked(b) == nil {
			entries = append(entries, b...)
		}
	}
	fm := forwardMsg{tag: "app.web"}
	if err := fm.decodePacked(entries); err != nil || len(fm.records) < 10 {
		t.Fatalf("%d records: %v", len(fm.records), err)
	}
	actors := []journal.Actor{
		inputActor("forward", "127.0.0.1:5000"),
		{UID: 1000, GID: 1000, PID: 42, User: "alice", Comm: "fluent-bit", Via: "forward", Addr: "[::1]:5", Principal: "p"},
		{UID: 0, Via: "system"},
	}
	sources := []source{
		{input: "forward", addr: "127.0.0.1:5000", uid: -1},
		{input: "forward", addr: "127.0.0.1:5000", uid: 1000},
		{input: "tail", uid: 0},
		{input: "syslog", uid: -1},
		{input: "http", addr: "10.0.0.1:1", uid: 70000},
	}
	for _, actor := range actors {
		for _, src := range sources {
			recs := slices.Clone(fm.records)
			for i := range recs {
				if i%3 == 1 {
					recs[i].route = "r" + strings.Repeat("x", i)
				}
				if i%4 == 2 {
					recs[i].Tag = "tag.é." + strings.Repeat("t", 20*i)
				}
			}
			got, ok := encodeRecords("node-1", actor, src, recs, nil)
			if !ok {
				t.Fatal("transcoded records not encoded")
			}
			// Into reused memory (a forward connection's), the same bytes;
			// the scratch starts dirty and too small for the second pass.
			scratch := &encodeScratch{buf: bytes.Repeat([]byte{0xee}, 100)}
			for range 2 {
				again, ok := encodeRecords("node-1", actor, src, recs, scratch)
				if !ok || len(again) != len(got) {
					t.Fatalf("into scratch: %d bodies, %v; want %d", len(again), ok, len(got))
				}
				for i := range got {
					if !bytes.Equal(again[i].Body, got[i].Body) || again[i].Kind != got[i].Kind || again[i].Subject != got[i].Subject {
						t.Fatalf("record %d into scratch:\n  got  %x\n  want %x", i, again[i].Body, got[i].Body)
					}
				}
			}
			for i, b := range recordBodies("node-1", actor, src, recs) {
				want, err := journal.EncodeBody(b)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got[i].Body, want) || got[i].Kind != b.Kind || got[i].Subject != b.Subject {
					t.Fatalf("actor %+v, source %+v, record %d:\n  got  %x %q %q\n  want %x", actor, src, i, got[i].Body, got[i].Kind, got[i].Subject, want)
				}
			}
		}
	}
	// A record that is a map, or no node: the journal encodes them.
	if _, ok := encodeRecords("", actors[0], sources[0], fm.records, nil); ok {
		t.Error("encoded without a node")
	}
	if _, ok := encodeRecords("n", actors[0], sources[0], []Record{{Tag: "t", Fields: map[string]any{}}}, nil); ok {
		t.Error("encoded a record that is a map")
	}
}
