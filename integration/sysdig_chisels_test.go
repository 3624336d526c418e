package integration

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sysdigShapedChisels are chisels written here in the shapes sysdig's
// own take (issue 13): sysdig filters, request_field of sysdig's names,
// table_generator, the thread table, I/O buffers, the event formatter,
// evt.field after the last event.
var sysdigShapedChisels = map[string]string{
	// I/O buffers and the fields of a write, as spy_file reads them.
	"t_io.lua": `description = "a file write, as sysdig's spy_file sees it"
local fbuf, fres, fnum, fdir, ftid, fpid, fpname, fargs, flen, fcont, fchar, fargs2, fisw
function on_init()
	chisel.set_filter("evt.is_io_write=true and fd.typechar=f and fd.name contains f.txt")
	fbuf = chisel.request_field("evt.buffer")
	fres = chisel.request_field("evt.rawarg.res")
	fnum = chisel.request_field("fd.num")
	fdir = chisel.request_field("evt.dir")
	ftid = chisel.request_field("thread.tid")
	fpid = chisel.request_field("proc.pid")
	fpname = chisel.request_field("proc.pname")
	fargs = chisel.request_field("proc.args")
	flen = chisel.request_field("evt.buflen.file")
	fcont = chisel.request_field("container.name")
	fchar = chisel.request_field("fd.typechar")
	fargs2 = chisel.request_field("evt.arg[1]")
	fisw = chisel.request_field("evt.is_io_write")
	return true
end
function on_event()
	print(string.format("buf=%s res=%d fd=%d dir=%s tid=%s len=%d cont=%s char=%s arg1=%s isw=%s",
		evt.field(fbuf), evt.field(fres), evt.field(fnum), evt.field(fdir), tostring(evt.field(ftid) == evt.field(fpid)),
		evt.field(flen), evt.field(fcont), evt.field(fchar), evt.field(fargs2), tostring(evt.field(fisw))))
	print("pname=" .. tostring(evt.field(fpname) ~= nil and evt.field(fpname) ~= "") .. " args=" .. tostring(evt.field(fargs)))
end`,
	// table_generator with a sysdig filter, as topfiles_errors execs it.
	"t_errors.lua": `description = "failed syscalls by process, through table_generator"
function on_init()
	chisel.exec("table_generator", "proc.name", "Process", "evt.count", "Errors", "evt.failed=true and evt.type in (open, openat)", "10", "none")
	return true
end`,
	// The thread table, read while the writer still has the file open.
	"t_threads.lua": `description = "the writer's descriptor table, as lsof reads it"
local ftid, done
function on_init()
	chisel.set_filter("evt.type=write and fd.name contains f.txt")
	ftid = chisel.request_field("thread.tid")
	return true
end
function on_event()
	if done then return end
	done = true
	local tt = sysdig.get_thread_table()
	local th = tt[evt.field(ftid)]
	for fd, info in pairs(th.fdtable) do
		if string.find(info.name, "f.txt", 1, true) then
			print(string.format("fd %d %s %s %s", fd, info.type, info.typechar, tostring(th.comm ~= "")))
		end
	end
end`,
	// The event formatter and the output format, as echo_fds uses them.
	"t_fmt.lua": `description = "stderr writes, through the event formatter"
function on_init()
	chisel.set_filter("evt.type=write and fd.num=2")
	chisel.set_event_formatter("%proc.name wrote: %evt.buffer")
	sysdig.set_output_format("ascii")
	return true
end
function on_event() return true end`,
	// evt.field after the last event, as sysdig's on_interval and
	// on_capture_end read it, with require "common".
	"t_last.lua": `description = "the last event's number, read in on_interval and on_capture_end"
require "common"
local fnum, last, ticks = nil, nil, 0
function on_init()
	fnum = chisel.request_field("evt.num")
	chisel.set_interval_ns(1000000)
	return true
end
function on_event() last = evt.field(fnum) end
function on_interval(ts_s, ts_ns, delta)
	if ticks == 0 then print("interval " .. tostring(evt.field(fnum) == last) .. " " .. ts_to_str(ts_s, ts_ns):sub(1, 2)) end
	ticks = ticks + 1
end
function on_capture_end() print(tostring(last ~= nil and evt.field(fnum) == last)) end`,
	// The rest of sysdig's API, each function called as sysdig's chisels do.
	"t_api.lua": `description = "sysdig's chisel API"
local n = 0
function on_init()
	sysdig.set_filter("evt.type=openat")
	chisel.set_precise_interval_ns(1000000000)
	sysdig.set_snaplen(1024)
	sysdig.udp_setpeername("127.0.0.1", "STATSD_PORT")
	print("init", sysdig.get_filter(), tostring(sysdig.is_tty()), tostring(sysdig.is_print_container_data()),
		sysdig.get_evtsource_name(), sysdig.get_output_format(), tostring(sysdig.get_terminal_info()), tostring(sysdig.is_live()))
	return true
end
function on_event() n = n + 1 end
function on_capture_end()
	local tt, nofds = sysdig.get_thread_table(), sysdig.get_thread_table_barebone_nofds()
	local ct = sysdig.get_container_table()
	sysdig.udp_send("opens:" .. n .. "|c")
	print("end", n > 0, sysdig.get_firstevent_ts() > 0, sysdig.get_lastevent_ts() >= sysdig.get_firstevent_ts(),
		sysdig.get_read_progress(), type(tt), type(nofds), next(ct) == nil, sysdig.make_ts(1, 5))
	print(pcall(sysdig.run_app, "x"))
end`,
	// Every sysdig field the workload's events carry, each asked for by
	// its sysdig name and printed when an event lacks it.
	"t_fields.lua": `description = "sysdig's fields on the write of f.txt, curl's connect and a procexit"
local want = {
	write = {"evt.num", "evt.type", "evt.dir", "evt.res", "evt.rawres", "evt.rawarg.res", "evt.arg.res", "evt.failed",
		"evt.is_io", "evt.is_io_read", "evt.is_io_write", "evt.io_dir", "evt.time", "evt.time.s", "evt.datetime",
		"evt.rawtime", "evt.rawtime.s", "evt.rawtime.ns", "evt.latency", "evt.count", "evt.arg.fd", "evt.rawarg.fd",
		"evt.arg.data", "evt.rawarg.data", "evt.buffer", "evt.buflen", "evt.buflen.file", "evt.args", "evt.arg[0]",
		"evt.arg[1]", "thread.tid", "thread.vtid", "thread.nametid", "proc.name", "proc.comm", "proc.pid", "proc.vpid",
		"proc.ppid", "proc.pname", "proc.args", "proc.exe", "proc.exeline", "proc.cmdline", "proc.cwd", "proc.loginshellid",
		"proc.aname[0]", "proc.aname[1]", "proc.aname[2]", "proc.apid[1]", "proc.apid[2]", "fd.num", "fd.name",
		"fd.type", "fd.typechar", "fd.directory", "fd.filename", "fd.containername", "fd.containerdirectory",
		"container.id", "container.name", "user.name", "user.uid"},
	connect = {"fd.l4proto", "fd.sip", "fd.sport", "fd.cip", "fd.cport", "fd.sockfamily", "fd.name"},
	procexit = {"proc.duration"},
}
local handles, seen = {}, {}
function on_init()
	for what, names in pairs(want) do
		handles[what] = {}
		for _, n in ipairs(names) do handles[what][n] = chisel.request_field(n) end
	end
	chisel.set_filter("(evt.type=write and fd.name contains f.txt) or (evt.type=connect and fd.l4proto=tcp) or (evt.type=procexit and proc.name=cat)")
	ftype = chisel.request_field("evt.type")
	return true
end
function on_event()
	local what = evt.field(ftype)
	if seen[what] then return end
	seen[what] = true
	local missing = {}
	for n, h in pairs(handles[what]) do
		if evt.field(h) == nil then table.insert(missing, n) end
	end
	table.sort(missing)
	print(what .. " missing: " .. table.concat(missing, " "))
end`,
	// syslog writes, as spy_syslog reads them.
	"t_syslog.lua": `description = "syslog messages"
local ffac, fsev, fmsg
function on_init()
	chisel.set_filter("syslog.severity exists")
	ffac = chisel.request_field("syslog.facility.str")
	fsev = chisel.request_field("syslog.severity.str")
	fmsg = chisel.request_field("syslog.message")
	return true
end
function on_event()
	print(evt.field(ffac) .. "." .. evt.field(fsev) .. " " .. evt.field(fmsg))
end`,
	// HTTP in a socket buffer, as sysdig's http.lua parses it.
	"t_http.lua": `description = "HTTP requests in socket buffers"
local fbuf
function on_init()
	chisel.set_filter("evt.is_io = true and evt.buflen > 0 and (fd.sockfamily = ip or fd.sockfamily = unix)")
	fbuf = chisel.request_field("evt.buffer")
	sysdig.set_snaplen(1024)
	return true
end
function on_event()
	local method, url = string.match(evt.field(fbuf), "^(%u+) (%g+)")
	if method then print(method .. " " .. url) end
end`,
}

// TestSysdigShapedChisels: chisels in the shapes of sysdig's own, over a
// workload traced with capture run (file reads and writes, a local HTTP
// server and curl, stderr output from a failing open), see what sysdig's
// see.
func TestSysdigShapedChisels(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"/usr/bin/curl", "/usr/bin/logger"} {
		if _, err := os.Stat(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing; .ci/run installs curl, and logger is Debian's bsdutils", tool)
			}
			t.Skip("needs " + tool)
		}
	}
	// t_api sends to a statsd of the test's, as sysdig's chisels do.
	statsd, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer statsd.Close()
	statsdPort := strconv.Itoa(statsd.LocalAddr().(*net.UDPAddr).Port)
	dir := t.TempDir()
	for name, src := range sysdigShapedChisels {
		src = strings.ReplaceAll(src, "STATSD_PORT", statsdPort)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })}
	go srv.Serve(ln)
	defer srv.Close()

	// A syslog socket of the test's own (logger -u), named as /dev/log is.
	work := t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	logSock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(work, "dev", "log"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer logSock.Close()

	d := startDaemon(t, withFlags("--chisel-path", dir))
	script := fmt.Sprintf("echo payload-xyz > %s/f.txt; cat %s/f.txt >/dev/null; cat /nonexistent; logger --rfc3164 -u %s/dev/log -p local3.warning -t cairntest hello-syslog; curl -s -o /dev/null http://%s/hello; sleep 1; cat /etc/hostname >/dev/null",
		work, work, work, ln.Addr())
	_, errOut, code := cli(t, d, "capture", "run", "--", "sh", "-c", script)
	skipIfNoPtrace(t, errOut)
	// The CLI sends what it traced every 200 ms: the sleep makes a second
	// batch, later, so that t_last's intervals pass between them.
	if code != 0 {
		t.Fatalf("capture run: exit %d\n%s", code, errOut)
	}

	// None of them declares a stream: like sysdig's, they read capture.
	run := func(name string) string {
		t.Helper()
		out, errOut, code := cli(t, d, "chisel", name)
		if code != 0 {
			t.Fatalf("chisel %s: exit %d\n%s", name, code, errOut)
		}
		return out
	}
	io := run("t_io")
	for _, want := range []string{"buf=payload-xyz. res=12 fd=1 dir=< tid=true len=12 cont=host char=f arg1=payload-xyz. isw=true", "pname=true args=-c echo payload-xyz"} {
		if !strings.Contains(io, want) {
			t.Errorf("t_io: no %q in\n%s", want, io)
		}
	}
	if errs := run("t_errors"); !strings.Contains(errs, "cat") || !strings.Contains(errs, "Errors") {
		t.Errorf("t_errors: the failing open of cat is not counted:\n%s", errs)
	}
	if th := run("t_threads"); !strings.Contains(th, "fd 1 file f true") {
		t.Errorf("t_threads: the writer's table lacks f.txt at fd 1:\n%s", th)
	}
	fm := run("t_fmt")
	if !strings.Contains(fm, "cat wrote: cat: \n") || !strings.Contains(fm, "cat wrote: : No such file or directory") {
		t.Errorf("t_fmt: stderr writes not formatted:\n%s", fm)
	}
	if last := run("t_last"); !strings.HasPrefix(last, "interval true ") || !strings.HasSuffix(last, "\ntrue\n") {
		t.Errorf("t_last: evt.field in on_interval and on_capture_end is not the last event's: %q", last)
	}
	api := run("t_api")
	for _, want := range []string{"init\tevt.type=openat\tfalse\tfalse\tsyscall\tnormal\tnil\tfalse",
		"end\ttrue\ttrue\ttrue\t100\ttable\ttable\ttrue\t1000000005", "false\t", "sysdig.run_app is not part of"} {
		if !strings.Contains(api, want) {
			t.Errorf("t_api: no %q in\n%s", want, api)
		}
	}
	buf := make([]byte, 64)
	statsd.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _, err := statsd.ReadFrom(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "opens:") {
		t.Errorf("t_api's udp_send: %q, %v", buf[:n], err)
	}
	for _, want := range []string{"write missing: \n", "connect missing: \n", "procexit missing: \n"} {
		if f := run("t_fields"); !strings.Contains(f, want) {
			t.Errorf("t_fields: a sysdig field is missing (want %q):\n%s", want, f)
		}
	}
	if sl := run("t_syslog"); !strings.Contains(sl, "local3.warn ") || !strings.Contains(sl, "cairntest: hello-syslog") {
		t.Errorf("t_syslog: logger's message is not decoded:\n%s", sl)
	}
	if h := run("t_http"); !strings.Contains(h, "GET /hello") {
		t.Errorf("t_http: curl's request is not in a socket buffer:\n%s", h)
	}

	// curl's socket is named by its ends, its server the test's listener.
	port := ln.Addr().(*net.TCPAddr).Port
	conn := cliOK(t, d, "-o", "json", "events", "stream=capture", "filter", fmt.Sprintf("evt.type=connect and fd.port=%d and fd.l4proto=tcp", port))
	if !strings.Contains(conn, fmt.Sprintf(`->127.0.0.1:%d","type":"ipv4","sip":"127.0.0.1","sport":%d,"cip":"127.0.0.1"`, port, port)) {
		t.Errorf("curl's connect does not name the socket by its ends:\n%s", conn)
	}

	// The same names in CEL, and a sysdig filter on events.
	cel := cliOK(t, d, "-o", "json", "events", "stream=capture", "where", `evt.is_io_write && fd.typechar == "f" && fd.filename == "f.txt" && evt.buffer.startsWith("payload")`)
	if strings.Count(cel, "\n") != 1 || !strings.Contains(cel, `"data":"cGF5bG9hZC14eXoK"`) {
		t.Errorf("the write of f.txt in CEL (its buffer stored as bytes, base64 in JSON):\n%s", cel)
	}
	sd := cliOK(t, d, "-o", "json", "events", "stream=capture", "filter", "evt.failed and proc.name=cat")
	if !strings.Contains(sd, "nonexistent") {
		t.Errorf("filter 'evt.failed and proc.name=cat' misses the failing open:\n%s", sd)
	}
}
