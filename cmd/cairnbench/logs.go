package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/cairnhq/cairn/client"
)

// The logs engine's targets (issue 18): 8 forward clients, PackedForward
// with acks, 1 KiB records, ≥ 200k records/s durable; a 1 GB file tailed;
// syslog over UDP at 50k messages/s for 30 s.
const (
	fwdClients    = 8
	fwdPerMessage = 500 // records per PackedForward message (one chunk, one ack)
	syslogRate    = 50_000
)

// logsDaemon starts a daemon for the logs part: forward and syslog on free
// ports, the logs stream kept whole (no size bound) so that nothing
// measured is dropped by retention.
func (b *bench) logsDaemon(ctx context.Context, name string) (*daemonProc, *client.Client, error) {
	d, err := b.newDaemon(filepath.Join(b.tmp, name))
	if err != nil {
		return nil, nil, err
	}
	d.Extra = append(d.Extra, "--syslog", "127.0.0.1:0", "--logs-retention-bytes", "0")
	d.profileAs(name)
	if _, _, err := d.start(ctx); err != nil {
		return nil, nil, err
	}
	c, err := d.Dial(ctx)
	return d, c, err
}

// cpuTicks is the daemon's user+system CPU time, in clock ticks (1/100 s).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st, nil
}

// record1K is a JSON-ish record of about 1 KiB, as an application's
// structured log line.
func record1K(client, i int) map[string]any {
	return map[string]any{
		"level": "info", "client": client, "i": i, "host": "web-01", "path": "/api/v1/orders",
		"status": 200, "latency_ms": 12.5, "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
		"msg": strings.Repeat("x", 800),
	}
}

// packedMessage encodes one PackedForward message with fluent-logger-
// golang's own Entry type (what its Post sends as Message mode, here
// concatenated as the protocol's PackedForward) and a chunk option.
func packedMessage(client, from, n int, chunk string) ([]byte, error) {
	var entries []byte
	now := time.Now().Unix()
	var err error
	for i := from; i < from+n; i++ {
		e := fluent.Entry{Time: now, Record: record1K(client, i)}
		if entries, err = e.MarshalMsg(entries); err != nil {
			return nil, err
		}
	}
	return msgpack.Marshal([]any{"bench.fwd", entries, map[string]any{"chunk": chunk, "size": n}})
}

func runLogs(ctx context.Context, b *bench) error {
	if err := runLogsForward(ctx, b); err != nil || b.cfg.logsForwardOnly {
		return err
	}
	if err := runLogsTail(ctx, b); err != nil {
		return err
	}
	return runLogsSyslog(ctx, b)
}

func runLogsForward(ctx context.Context, b *bench) error {
	d, c, err := b.logsDaemon(ctx, "logs-forward")
	if err != nil {
		return err
	}
	defer c.Close()
	addr := d.Status.Listeners["forward"]
	perClient := 50_000
	if b.cfg.quick {
		perClient = 5_000
	}
	// The messages are encoded before the clock starts: what is measured
	// is the daemon, not the encoder.
	msgs := make([][][]byte, fwdClients)
	for cl := range fwdClients {
		for from := 0; from < perClient; from += fwdPerMessage {
			m, err := packedMessage(cl, from, fwdPerMessage, fmt.Sprintf("c%d-%d", cl, from))
			if err != nil {
				return err
			}
			msgs[cl] = append(msgs[cl], m)
		}
	}
	var rates, cpus []float64
	for round := range b.cfg.rounds {
		t0, err := cpuTicks(d.Cmd.Process.Pid)
		if err != nil {
			return err
		}
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, fwdClients)
		for cl := range fwdClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- sendAcked(ctx, addr, msgs[cl], round)
			}()
		}
		wg.Wait()
		el := time.Since(start).Seconds()
		close(errs)
		for err := range errs {
			if err != nil {
				return err
			}
		}
		t1, _ := cpuTicks(d.Cmd.Process.Pid)
		n := float64(fwdClients * perClient)
		rates = append(rates, n/el)
		cpus = append(cpus, float64(t1-t0)*10e6/n) // ticks of 10 ms → ns per record
		b.logf("forward round %d: %s, %.1f µs CPU/record", round+1, rate(n/el), float64(t1-t0)*10e6/n/1000)
	}
	stored, err := countQuery(ctx, c, "events stream=logs kind=logs.record count")
	if err != nil {
		return err
	}
	want := int64(fwdClients * perClient * b.cfg.rounds)
	r := median(rates)
	b.add(fmt.Sprintf("forward: %d clients, PackedForward of %d 1-KiB records with chunk acks (daemon)", fwdClients, fwdPerMessage), "≥ 200k records/s durable",
		fmt.Sprintf("%s, %.1f µs daemon CPU/record, %d/%d stored", rate(r), median(cpus)/1000, stored, want), ptr(r >= 200_000 && stored == want))

	// The library itself, as Docker's driver uses it: one record per
	// Message, RequestAck, 8 clients.
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	per := 2000
	if b.cfg.quick {
		per = 300
	}
	start := time.Now()
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for cl := range fwdClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := fluent.New(fluent.Config{FluentHost: host, FluentPort: p, RequestAck: true, SubSecondPrecision: true})
			if err == nil {
				for i := range per {
					if err = f.Post("bench.msg", record1K(cl, i)); err != nil {
						break
					}
				}
				f.Close()
			}
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	r = float64(fwdClients*per) / time.Since(start).Seconds()
	b.add("forward: 8 fluent-logger-golang clients, Post with RequestAck (one record per ack)", "context", rate(r), nil)
	return nil
}

// sendAcked writes each message and waits for its ack, on one connection.
func sendAcked(ctx context.Context, addr string, msgs [][]byte, round int) error {
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	dec := msgpack.NewDecoder(bufio.NewReader(conn))
	for _, m := range msgs {
		if _, err := conn.Write(m); err != nil {
			return err
		}
		var ack map[string]string
		if err := dec.Decode(&ack); err != nil {
			return fmt.Errorf("round %d: ack: %w", round+1, err)
		}
	}
	return nil
}

// logsRecords is the records counter of `logs stats` for input.
func logsRecords(ctx context.Context, c *client.Client, input string) (int64, error) {
	res, err := c.Do(ctx, "logs stats")
	if err != nil {
		return 0, err
	}
	for _, raw := range res.Rows {
		var row struct {
			Input, Counter string
			Value          int64
		}
		if json.Unmarshal(raw, &row) == nil && row.Input == input && row.Counter == "records" {
			return row.Value, nil
		}
	}
	return 0, nil
}

func runLogsTail(ctx context.Context, b *bench) error {
	_, c, err := b.logsDaemon(ctx, "logs-tail")
	if err != nil {
		return err
	}
	defer c.Close()
	size := int64(1 << 30)
	if b.cfg.quick {
		size = 100 << 20
	}
	path := filepath.Join(b.tmp, "tail.log")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var lines, written int64
	for written < size {
		n, _ := fmt.Fprintf(w, `{"level":"info","i":%d,"path":"/api/v1/orders","status":200,"msg":"%s"}`+"\n", lines, strings.Repeat("y", 120))
		written += int64(n)
		lines++
	}
	if err := w.Flush(); err != nil {
		return err
	}
	f.Close()
	defer os.Remove(path)
	start := time.Now()
	if _, err := c.Do(ctx, fmt.Sprintf("logs tail add %s tag=bench.tail format=json pos=start", path)); err != nil {
		return err
	}
	for {
		n, err := logsRecords(ctx, c, "tail")
		if err != nil {
			return err
		}
		if n >= lines {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	el := time.Since(start).Seconds()
	b.add(fmt.Sprintf("tail: a %d MB file of %d-byte JSON lines from its start (daemon)", written>>20, written/lines), "MB/s",
		fmt.Sprintf("%.0f MB/s, %s", float64(written)/el/1e6, rate(float64(lines)/el)), nil)
	return nil
}

func runLogsSyslog(ctx context.Context, b *bench) error {
	d, c, err := b.logsDaemon(ctx, "logs-syslog")
	if err != nil {
		return err
	}
	defer c.Close()
	dur := 30 * time.Second
	if b.cfg.quick {
		dur = 5 * time.Second
	}
	conn, err := net.Dial("udp", d.Status.Listeners["syslog"])
	if err != nil {
		return err
	}
	defer conn.Close()
	const tick = 10 * time.Millisecond
	perTick := syslogRate * int(tick) / int(time.Second)
	var sent int64
	start := time.Now()
	next := start
	for time.Since(start) < dur && ctx.Err() == nil {
		for range perTick {
			msg := fmt.Sprintf("<134>1 %s bench app 42 - - message %d of the syslog benchmark", time.Now().UTC().Format(time.RFC3339Nano), sent)
			if _, err := conn.Write([]byte(msg)); err == nil {
				sent++
			}
		}
		next = next.Add(tick)
		time.Sleep(time.Until(next))
	}
	el := time.Since(start).Seconds()
	// Wait for what arrived to be stored: the count stops moving.
	var stored int64
	for {
		time.Sleep(500 * time.Millisecond)
		n, err := logsRecords(ctx, c, "syslog")
		if err != nil {
			return err
		}
		if n == stored {
			break
		}
		stored = n
	}
	drops := sent - stored
	b.add(fmt.Sprintf("syslog: RFC 5424 over UDP at %dk/s for %.0f s (daemon)", syslogRate/1000, dur.Seconds()), "drops counted, 0 if possible",
		fmt.Sprintf("%s sent, %d stored, %d dropped", rate(float64(sent)/el), stored, drops), ptr(drops == 0))
	return nil
}
