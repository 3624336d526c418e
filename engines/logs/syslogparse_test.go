package logs

import (
	"reflect"
	"testing"
	"time"
)

// TestParseSyslog pins both RFCs as logger(1) and rsyslog write them, and
// the lines that match neither.
func TestParseSyslog(t *testing.T) {
	now := time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		line string
		tag  string
		want map[string]any
		time time.Time
	}{
		{`<165>1 2026-12-05T14:55:01.123456+00:00 web01 myapp 4242 ID47 [exampleSDID@32473 iut="3" eventSource="App\]"] hello world`,
			"syslog.local4.notice",
			map[string]any{"pri": int64(165), "facility": "local4", "severity": "notice", "host": "web01", "ident": "myapp", "pid": "4242", "msgid": "ID47",
				"extradata": `[exampleSDID@32473 iut="3" eventSource="App\]"]`, "message": "hello world"},
			time.Date(2026, 12, 5, 14, 55, 1, 123456000, time.UTC)},
		{"<13>1 - - - - - -", "syslog.user.notice",
			map[string]any{"pri": int64(13), "facility": "user", "severity": "notice", "message": ""}, time.Time{}},
		{"<11>1 2026-12-05T14:55:01Z h app - - - \ufeffBOM'd message\n", "syslog.user.err",
			map[string]any{"pri": int64(11), "facility": "user", "severity": "err", "host": "h", "ident": "app", "message": "BOM'd message"},
			time.Date(2026, 12, 5, 14, 55, 1, 0, time.UTC)},
		{"<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8", "syslog.auth.crit",
			map[string]any{"pri": int64(34), "facility": "auth", "severity": "crit", "host": "mymachine", "ident": "su", "pid": "230", "message": "'su root' failed for lonvick on /dev/pts/8"},
			time.Date(2026, 10, 11, 22, 14, 15, 0, time.UTC)},
		{"<14>Dec  5 14:59:00 box app: hi there", "syslog.user.info",
			map[string]any{"pri": int64(14), "facility": "user", "severity": "info", "host": "box", "ident": "app", "message": "hi there"},
			time.Date(2026, 12, 5, 14, 59, 0, 0, time.UTC)},
		// A date more than a day ahead of now is last year's (December's
		// message read in January).
		{"<14>Dec 31 23:59:59 box app: late", "syslog.user.info",
			map[string]any{"pri": int64(14), "facility": "user", "severity": "info", "host": "box", "ident": "app", "message": "late"},
			time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)},
	} {
		rec, err := parseSyslog(tc.line, now)
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if rec.Tag != tc.tag {
			t.Errorf("%q: tag %s, want %s", tc.line, rec.Tag, tc.tag)
		}
		if !reflect.DeepEqual(rec.Fields, tc.want) {
			t.Errorf("%q:\n got %v\nwant %v", tc.line, rec.Fields, tc.want)
		}
		if !tc.time.IsZero() && !rec.Time.Equal(tc.time) {
			t.Errorf("%q: time %v, want %v", tc.line, rec.Time, tc.time)
		}
	}
	for _, bad := range []string{"", "no pri", "<999>1 - - - - - -", "<13>", "<13>hello", "<13>1 2026-13-45 h a - - - x",
		"<13>1 - h a p m [unterminated", "<13>1 - h a p", "<13>Dec  5 14:59:00"} {
		if rec, err := parseSyslog(bad, now); err == nil {
			t.Errorf("%q parsed: %+v", bad, rec)
		}
	}
}
