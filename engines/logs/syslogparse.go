package logs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// facilities and severities are Fluentd's in_syslog names.
var (
	facilities = [24]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
		"uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "at",
		"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}
	severities = [8]string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"}
)

// parseSyslog parses one syslog message, RFC 5424 when its PRI is
// followed by the version 1, RFC 3164 otherwise. The record has
// Fluentd's in_syslog fields (host, ident, pid, msgid, extradata,
// message) and facility, severity and pri; the tag is
// syslog.FACILITY.SEVERITY. now dates an RFC 3164 timestamp, which has no
// year.
func parseSyslog(line string, now time.Time) (Record, error) {
	line = strings.TrimRight(line, "\r\n\x00")
	if !strings.HasPrefix(line, "<") {
		return Record{}, errors.New("no <PRI> at the start")
	}
	end := strings.IndexByte(line, '>')
	if end < 2 || end > 4 {
		return Record{}, errors.New("no <PRI> at the start")
	}
	pri, err := strconv.Atoi(line[1:end])
	if err != nil || pri < 0 || pri > 191 {
		return Record{}, fmt.Errorf("PRI %q is not 0 to 191", line[1:end])
	}
	fac, sev := facilities[pri/8], severities[pri%8]
	rest := line[end+1:]
	fields := map[string]any{"pri": int64(pri), "facility": fac, "severity": sev}
	var t time.Time
	if strings.HasPrefix(rest, "1 ") {
		t, err = parse5424(rest[2:], fields)
	} else {
		t, err = parse3164(rest, fields, now)
	}
	if err != nil {
		return Record{}, err
	}
	return Record{Tag: "syslog." + fac + "." + sev, Time: t, Fields: fields}, nil
}

// parse5424: TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG].
func parse5424(s string, f map[string]any) (time.Time, error) {
	var parts [5]string
	for i := range parts {
		sp := strings.IndexByte(s, ' ')
		if sp < 0 {
			return time.Time{}, fmt.Errorf("RFC 5424: header ends after %d fields", i)
		}
		parts[i], s = s[:sp], s[sp+1:]
	}
	t := time.Now()
	if parts[0] != "-" {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, parts[0]); err != nil {
			return time.Time{}, fmt.Errorf("RFC 5424: timestamp %q", parts[0])
		}
	}
	for i, name := range []string{"host", "ident", "pid", "msgid"} {
		if v := parts[i+1]; v != "-" {
			f[name] = v
		}
	}
	// STRUCTURED-DATA: "-" or [..][..], where \] escapes a bracket.
	sd := ""
	switch {
	case strings.HasPrefix(s, "-"):
		s = s[1:]
	case strings.HasPrefix(s, "["):
		i := 0
		for i < len(s) && s[i] == '[' {
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == ']' {
					break
				}
			}
			if j >= len(s) {
				return time.Time{}, errors.New("RFC 5424: structured data without its ]")
			}
			i = j + 1
		}
		sd, s = s[:i], s[i:]
	default:
		return time.Time{}, errors.New("RFC 5424: no structured data (- or [...])")
	}
	if sd != "" {
		f["extradata"] = sd
	}
	if s != "" && s[0] != ' ' {
		return time.Time{}, errors.New("RFC 5424: no space before the message")
	}
	f["message"] = strings.TrimPrefix(strings.TrimPrefix(s, " "), "\ufeff")
	return t, nil
}

// parse3164: TIMESTAMP HOSTNAME TAG[PID]: MSG, the timestamp as
// "Jan _2 15:04:05".
func parse3164(s string, f map[string]any, now time.Time) (time.Time, error) {
	const stamp = "Jan _2 15:04:05"
	if len(s) < len(stamp)+1 || s[len(stamp)] != ' ' {
		return time.Time{}, errors.New("neither RFC 5424 (<PRI>1 …) nor RFC 3164 (<PRI>Mmm dd hh:mm:ss …)")
	}
	ts, err := time.ParseInLocation(stamp, s[:len(stamp)], now.Location())
	if err != nil {
		return time.Time{}, fmt.Errorf("RFC 3164: timestamp %q", s[:len(stamp)])
	}
	t := time.Date(now.Year(), ts.Month(), ts.Day(), ts.Hour(), ts.Minute(), ts.Second(), 0, now.Location())
	if t.After(now.Add(24 * time.Hour)) { // December's message read in January
		t = t.AddDate(-1, 0, 0)
	}
	s = s[len(stamp)+1:]
	sp := strings.IndexByte(s, ' ')
	if sp <= 0 {
		return time.Time{}, errors.New("RFC 3164: no host after the timestamp")
	}
	f["host"], s = s[:sp], s[sp+1:]
	// TAG: up to 32 alphanumerics-ish, then [PID] and ':'.
	colon := strings.Index(s, ": ")
	if colon < 0 && strings.HasSuffix(s, ":") {
		colon = len(s) - 1
	}
	if colon > 0 && !strings.ContainsAny(s[:colon], " ") {
		ident := s[:colon]
		if open := strings.IndexByte(ident, '['); open > 0 && strings.HasSuffix(ident, "]") {
			f["pid"] = ident[open+1 : len(ident)-1]
			ident = ident[:open]
		}
		f["ident"] = ident
		s = strings.TrimPrefix(s[colon+1:], " ")
	}
	f["message"] = s
	return t, nil
}
