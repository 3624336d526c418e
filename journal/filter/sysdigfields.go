package filter

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/common/types"
)

// sysdigFields are sysdig's names for what cairn's events carry under
// other names, or hold in data, or imply: sysdig's chisels and filters ask
// for them (docs/chisels.md lists each with its source). They are CEL
// variables like any other field, computed when a filter or a chisel reads
// them.
// storedEvtNum is evt.num as a source stored it; evt.num falls back to
// the event's seq, its number in the stream, as sysdig's is in a capture.
const storedEvtNum = "evt.num (stored)"

// storedComm is the task's comm as a source stored it.
const storedComm = "proc.comm (stored)"

// storedContainerName is the container name an event carries (cairn's own
// containers); container.name falls back to the id, as sysdig names the
// host "host".
const storedContainerName = "container.name (stored)"

var sysdigFields = []*field{
	derived("evt.num", kInt, func(r fieldReader) any {
		if n, ok := r.get(storedEvtNum).(types.Int); ok {
			return n
		}
		if _, ok := r.get("evt.type").(types.String); !ok {
			return errMissing
		}
		return r.get("seq")
	}),
	// A process's run time, on its procexit event (the tracer's).
	derived("proc.duration", kInt, dataInt("duration")),
	derived("evt.rawres", kInt, evtRes),
	derived("evt.rawarg.res", kInt, evtRes),
	derived("evt.arg.res", kInt, evtRes),
	// A capture syscall event is the syscall's exit (its result and its
	// arguments together, as sysdig's "<" event); procexit is an entry.
	derived("evt.dir", kString, func(r fieldReader) any {
		t, ok := r.get("evt.type").(types.String)
		if !ok {
			return errMissing
		}
		if t == "procexit" {
			return types.String(">")
		}
		return types.String("<")
	}),
	derived("evt.failed", kBool, func(r fieldReader) any {
		res, ok := evtResOf(r)
		if !ok {
			return errMissing
		}
		return types.Bool(res < 0)
	}),
	derived("evt.is_io", kBool, isIO("")),
	derived("evt.is_io_read", kBool, isIO("r")),
	derived("evt.is_io_write", kBool, isIO("w")),
	derived("evt.io_dir", kString, dataString("io_dir")),
	derived("evt.buflen", kInt, dataInt("bytes")),
	derived("evt.buflen.file", kInt, buflen(fileTypes, "")),
	derived("evt.buflen.net", kInt, buflen(netTypes, "")),
	derived("evt.buffer", kString, dataBytes("data")),
	derived("evt.arg.data", kString, dataBytes("data")),
	derived("evt.rawarg.data", kString, dataBytes("data")),
	derived("evt.arg.fd", kInt, dataInt("fd")),
	derived("evt.rawarg.fd", kInt, dataInt("fd")),
	derived("evt.args", kString, evtArgs),
	derived("evt.rawtime", kInt, evtTime(func(ns int64) any { return types.Int(ns) })),
	derived("evt.rawtime.s", kInt, evtTime(func(ns int64) any { return types.Int(ns / 1e9) })),
	derived("evt.rawtime.ns", kInt, evtTime(func(ns int64) any { return types.Int(ns % 1e9) })),
	derived("evt.time.s", kString, evtTime(func(ns int64) any { return types.String(time.Unix(0, ns).UTC().Format("15:04:05")) })),
	derived("evt.datetime", kString, evtTime(func(ns int64) any {
		return types.String(time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05.000000000"))
	})),
	derived("evt.latency.s", kInt, intOf("evt.latency", func(n int64) int64 { return n / 1e9 })),
	derived("evt.latency.ns", kInt, intOf("evt.latency", func(n int64) int64 { return n % 1e9 })),

	derived("thread.vtid", kInt, alias("thread.tid")),
	derived("proc.vpid", kInt, alias("proc.pid")),
	derived("proc.comm", kString, func(r fieldReader) any {
		if c, ok := r.get(storedComm).(types.String); ok {
			return c
		}
		return r.get("proc.name") // a source that knows only one name
	}),
	derived("proc.exeline", kString, alias("proc.cmdline")),
	derived("proc.args", kString, func(r fieldReader) any {
		c, ok := r.get("proc.cmdline").(types.String)
		if !ok {
			return errMissing
		}
		_, args, _ := strings.Cut(string(c), " ")
		return types.String(args)
	}),
	derived("thread.nametid", kString, func(r fieldReader) any {
		n, ok1 := r.get("proc.name").(types.String)
		tid, ok2 := r.get("thread.tid").(types.Int)
		if !ok1 || !ok2 {
			return errMissing
		}
		return types.String(string(n) + strconv.FormatInt(int64(tid), 10))
	}),

	derived("fd.num", kInt, dataInt("fd")),
	derived("fd.typechar", kString, func(r fieldReader) any {
		t, ok := r.get("fd.type").(types.String)
		if !ok {
			return errMissing
		}
		return types.String(TypeChar(string(t)))
	}),
	derived("fd.directory", kString, fileName(path.Dir)),
	derived("fd.filename", kString, fileName(path.Base)),
	derived("fd.sockfamily", kString, func(r fieldReader) any {
		switch t, _ := r.get("fd.type").(types.String); t {
		case "ipv4", "ipv6":
			return types.String("ip")
		case "unix":
			return types.String("unix")
		}
		return errMissing
	}),
	derived("fd.containername", kString, func(r fieldReader) any {
		id, ok1 := r.get("container.id").(types.String)
		n, ok2 := r.get("fd.name").(types.String)
		if !ok1 || !ok2 {
			return errMissing
		}
		return types.String(string(id) + string(n))
	}),
	derived("fd.containerdirectory", kString, func(r fieldReader) any {
		id, ok1 := r.get("container.id").(types.String)
		d, ok2 := r.get("fd.directory").(types.String)
		if !ok1 || !ok2 {
			return errMissing
		}
		return types.String(string(id) + string(d))
	}),
	// A resource sample (capture.sample) is sysdig's procinfo event: the
	// CPU a process used since its previous sample, as a percentage of
	// one core (thread.cpu) and in ns (thread.exectime).
	// A process's first sample has nothing to compare with: 0.
	derived("thread.cpu", kDouble, func(r fieldReader) any {
		if _, sample := r.dataKey("cpu_s"); !sample {
			return errMissing
		}
		cpu, ok1 := toFloat(r.dataKey("cpu_delta_s"))
		el, ok2 := toFloat(r.dataKey("elapsed_s"))
		if !ok1 || !ok2 || el <= 0 {
			return types.Double(0)
		}
		return types.Double(100 * cpu / el)
	}),
	derived("thread.exectime", kInt, func(r fieldReader) any {
		if _, sample := r.dataKey("cpu_s"); !sample {
			return errMissing
		}
		cpu, _ := toFloat(r.dataKey("cpu_delta_s"))
		return types.Int(int64(cpu * 1e9))
	}),
	// A write to syslog's socket (/dev/log), decoded from its buffer's
	// <PRI> header as sysdig decodes it; the message is what follows it.
	derived("syslog.facility", kInt, syslogPart(func(pri int, _ string) any { return types.Int(pri / 8) })),
	derived("syslog.facility.str", kString, syslogPart(func(pri int, _ string) any { return types.String(syslogFacility(pri / 8)) })),
	derived("syslog.severity", kInt, syslogPart(func(pri int, _ string) any { return types.Int(pri % 8) })),
	derived("syslog.severity.str", kString, syslogPart(func(pri int, _ string) any { return types.String(syslogSeverities[pri%8]) })),
	derived("syslog.message", kString, syslogPart(func(_ int, msg string) any { return types.String(msg) })),
	// Outside containers sysdig names the host "host"; cairn knows no
	// container's name yet, so a container is named by its id.
	derived("container.name", kString, func(r fieldReader) any {
		if n, ok := r.get(storedContainerName).(types.String); ok {
			return n // one of cairn's containers
		}
		return r.get("container.id") // sysdig's name for the host is its id, "host"
	}),
}

func derived(name string, out valueKind, fn func(r fieldReader) any) *field {
	ns, key, _ := strings.Cut(name, ".")
	return &field{name: name, kind: kDerived, out: out, derive: fn, ns: ns, key: key}
}

func alias(name string) func(fieldReader) any {
	return func(r fieldReader) any { return r.get(name) }
}

// evtResOf is the event's result: evt.res, which is not stored when 0.
func evtResOf(r fieldReader) (int64, bool) {
	if _, ok := r.get("evt.type").(types.String); !ok {
		return 0, false
	}
	res, _ := r.get("evt.res").(types.Int)
	return int64(res), true
}

func evtRes(r fieldReader) any {
	res, ok := evtResOf(r)
	if !ok {
		return errMissing
	}
	return types.Int(res)
}

func evtTime(fn func(ns int64) any) func(fieldReader) any {
	return func(r fieldReader) any {
		t, ok := r.get("evt.time").(types.Timestamp)
		if !ok {
			return errMissing
		}
		return fn(t.UnixNano())
	}
}

func intOf(name string, fn func(int64) int64) func(fieldReader) any {
	return func(r fieldReader) any {
		n, ok := r.get(name).(types.Int)
		if !ok {
			return errMissing
		}
		return types.Int(fn(int64(n)))
	}
}

// isIO: whether the event moved bytes (dir ""), or read or wrote them.
// An event of another kind is no I/O (false, not missing), so that
// `evt.is_io=false` matches it as in sysdig.
func isIO(dir string) func(fieldReader) any {
	return func(r fieldReader) any {
		d, ok := r.dataKey("io_dir")
		s, _ := d.(string)
		return types.Bool(ok && s != "" && (dir == "" || s == dir))
	}
}

var (
	fileTypes = []string{"file", "directory"}
	netTypes  = []string{"ipv4", "ipv6"}
)

// buflen is the bytes an I/O event moved on a descriptor of one of types,
// in direction dir ("" for either); missing for any other event.
func buflen(types_ []string, dir string) func(fieldReader) any {
	return func(r fieldReader) any {
		t, ok := r.get("fd.type").(types.String)
		if !ok || !slices.Contains(types_, string(t)) {
			return errMissing
		}
		if dir != "" {
			if d, _ := r.dataKey("io_dir"); d != dir {
				return errMissing
			}
		}
		return dataInt("bytes")(r)
	}
}

func dataString(key string) func(fieldReader) any {
	return func(r fieldReader) any {
		v, ok := r.dataKey(key)
		s, isStr := v.(string)
		if !ok || !isStr {
			return errMissing
		}
		return types.String(s)
	}
}

// dataBytes reads a buffer: a byte string (as the tracer stores I/O
// buffers) or a text string, as a CEL string of the same bytes.
func dataBytes(key string) func(fieldReader) any {
	return func(r fieldReader) any {
		v, _ := r.dataKey(key)
		switch b := v.(type) {
		case []byte:
			return types.String(b)
		case string:
			return types.String(b)
		}
		return errMissing
	}
}

func dataInt(key string) func(fieldReader) any {
	return func(r fieldReader) any {
		v, _ := r.dataKey(key)
		if n, ok := toInt(v); ok {
			return types.Int(n)
		}
		return errMissing
	}
}

func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case uint64:
		return int64(n), true
	case int:
		return int64(n), true
	case float64:
		return int64(n), n == float64(int64(n))
	}
	return 0, false
}

func fileName(part func(string) string) func(fieldReader) any {
	return func(r fieldReader) any {
		t, _ := r.get("fd.type").(types.String)
		n, ok := r.get("fd.name").(types.String)
		if !ok || (t != "file" && t != "directory") || !strings.HasPrefix(string(n), "/") {
			return errMissing
		}
		if t == "directory" && part(string(n)) == path.Dir(string(n)) {
			return types.String(n) // a directory's directory is itself, as sysdig's
		}
		return types.String(part(string(n)))
	}
}

// TypeChar is sysdig's one-letter fd.typechar of an fd.type.
func TypeChar(t string) string {
	switch t {
	case "file":
		return "f"
	case "directory":
		return "d"
	case "ipv4":
		return "4"
	case "ipv6":
		return "6"
	case "unix":
		return "u"
	case "pipe":
		return "p"
	case "event":
		return "e"
	case "signalfd":
		return "s"
	case "eventpoll":
		return "l"
	case "inotify":
		return "i"
	case "timerfd":
		return "t"
	case "netlink":
		return "n"
	}
	return "o"
}

// evtArgs renders the event's arguments as sysdig's evt.args does:
// name=value pairs, the result first, a descriptor with its type letter
// and name, a buffer with what is not printable shown as dots.
func evtArgs(r fieldReader) any {
	res, ok := evtResOf(r)
	if !ok {
		return errMissing
	}
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	add("res", strconv.FormatInt(res, 10))
	if fd, ok := dataInt("fd")(r).(types.Int); ok {
		v := strconv.FormatInt(int64(fd), 10)
		if n, ok := r.get("fd.name").(types.String); ok {
			t, _ := r.get("fd.type").(types.String)
			v += "(<" + TypeChar(string(t)) + ">" + string(n) + ")"
		}
		add("fd", v)
	}
	if m, ok := r.get("data").(map[string]any); ok {
		keys := make([]string, 0, len(m))
		for k := range m {
			switch k {
			case "fd", "data", "io_dir":
			default:
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			switch v := m[k].(type) {
			case string:
				add(k, v)
			default:
				if n, ok := toInt(v); ok {
					add(k, strconv.FormatInt(n, 10))
				}
			}
		}
	}
	if buf, ok := dataBytes("data")(r).(types.String); ok {
		add("data", printable(string(buf)))
	}
	return types.String(b.String())
}

// printable replaces what is not printable ASCII with dots, as sysdig's
// default buffer format does.
func printable(s string) string {
	out := []byte(s)
	for i, c := range out {
		if c < 0x20 || c > 0x7e {
			out[i] = '.'
		}
	}
	return string(out)
}

// syslogPart decodes a write to syslog's socket: its priority and its
// message; missing for any other event.
func syslogPart(fn func(pri int, msg string) any) func(fieldReader) any {
	return func(r fieldReader) any {
		n, ok := r.get("fd.name").(types.String)
		if !ok || !strings.Contains(string(n), "/dev/log") {
			return errMissing
		}
		if d, _ := r.dataKey("io_dir"); d != "w" {
			return errMissing
		}
		buf, ok := dataBytes("data")(r).(types.String)
		if !ok || len(buf) < 3 || buf[0] != '<' {
			return errMissing
		}
		end := strings.IndexByte(string(buf), '>')
		if end < 2 || end > 4 {
			return errMissing
		}
		pri, err := strconv.Atoi(string(buf[1:end]))
		if err != nil || pri < 0 || pri > 191 {
			return errMissing
		}
		return fn(pri, string(buf[end+1:]))
	}
}

var syslogSeverities = [8]string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"}

// syslogFacility is sysdig's name of a syslog facility.
func syslogFacility(f int) string {
	names := [...]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
		"uucp", "clock", "authpriv", "ftp", "ntp", "logaudit", "logalert", "cron"}
	if f < len(names) {
		return names[f]
	}
	return "local" + strconv.Itoa(f-16)
}

func toFloat(v any, ok bool) (float64, bool) {
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	}
	i, ok := toInt(v)
	return float64(i), ok
}
