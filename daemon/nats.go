package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cairnhq/cairn/journal"
)

// maxNATSPayload is the largest message the embedded NATS server carries.
const maxNATSPayload = 4 << 20

// bus is the embedded NATS server and the publisher that puts every durable
// event on cairn.<stream>.<kind>.
type bus struct {
	srv   *server.Server
	nc    *nats.Conn
	url   string
	token string
	log   *slog.Logger

	stop      context.CancelFunc // ends the publishers
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// startBus starts the embedded NATS server and one publisher per stream,
// publishing each stream's events from the seq in from.
func startBus(ctx context.Context, s *Server, cfg Config, from map[string]int64) (*bus, error) {
	host, portStr, err := net.SplitHostPort(cfg.NATS)
	if err != nil {
		return nil, fmt.Errorf("--nats %q: want HOST:PORT or off: %w", cfg.NATS, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("--nats %q: bad port: %w", cfg.NATS, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT // nats-server reads 0 as its default port
	}
	b := &bus{log: s.log.With("component", "nats")}
	ctx, b.stop = context.WithCancel(ctx)
	opts := &server.Options{
		ServerName: "cairn-" + s.node,
		Host:       host,
		Port:       port,
		NoSigs:     true,
		MaxPayload: maxNATSPayload,
	}
	switch cfg.NATSAuth {
	case "token":
		b.token, err = natsToken(cfg.DataDir)
		if err != nil {
			return nil, err
		}
	case "none":
	default:
		return nil, fmt.Errorf("--nats-auth %q: want token or none", cfg.NATSAuth)
	}
	auth := newNATSAuth(b.token)
	opts.CustomClientAuthentication = auth
	b.srv, err = server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure embedded NATS: %w", err)
	}
	b.srv.SetLoggerV2(natsLogger{b.log}, false, false, false)
	go b.srv.Start()
	if !b.srv.ReadyForConnections(10 * time.Second) {
		b.srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not start listening on %s (is the port in use? choose another with --nats ADDR or --nats off)", cfg.NATS)
	}
	b.url = b.srv.ClientURL()
	b.nc, err = nats.Connect("", nats.InProcessServer(b.srv), nats.UserInfo(publisherUser, auth.publisherPass), nats.Name(publisherUser))
	if err != nil {
		b.srv.Shutdown()
		return nil, fmt.Errorf("connect to embedded NATS: %w", err)
	}
	for _, name := range s.journal.Names() {
		st := s.journal.Stream(name)
		sub := st.Subscribe(ctx, from[name], nil)
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer sub.Close()
			b.publish(ctx, name, sub)
		}()
	}
	return b, nil
}

// publish sends every durable event of one stream, in order, skipping the
// encoding when nobody is subscribed to its subject.
func (b *bus) publish(ctx context.Context, stream string, sub *journal.Subscription) {
	acc := b.srv.GlobalAccount()
	prefix := "cairn." + stream + "."
	for {
		it, err := sub.Next(ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, journal.ErrClosed) {
				b.log.Error("event publisher stopped", "stream", stream, "err", err)
			}
			return
		}
		if it.Lagged {
			b.log.Warn("event publisher lagged; reading the journal to catch up", "stream", stream)
			continue
		}
		if acc.TotalSubs() == 0 {
			continue // nobody listens: skip the decoding
		}
		kind, err := it.Raw.Kind()
		if err != nil {
			b.log.Error("read event kind for NATS", "stream", stream, "seq", it.Raw.Seq, "err", err)
			continue
		}
		subject := prefix + kind
		if !acc.SubscriptionInterest(subject) {
			continue
		}
		payload, err := it.Raw.JSON()
		if err != nil {
			b.log.Error("encode event for NATS", "stream", stream, "seq", it.Raw.Seq, "err", err)
			continue
		}
		if err := b.nc.Publish(subject, payload); err != nil {
			b.log.Error("publish event", "subject", subject, "seq", it.Raw.Seq, "err", err)
		}
	}
}

func (b *bus) close() {
	b.closeOnce.Do(func() {
		b.stop()
		b.wg.Wait()
		b.nc.Flush()
		b.nc.Close()
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	})
}

// natsToken reads <data>/nats.token, creating it (0600) at first start.
func natsToken(dataDir string) (string, error) {
	return tokenFile(filepath.Join(dataDir, "nats.token"), "NATS")
}

// tokenFile reads the token at path, creating it (0600, 24 random bytes in
// hex) when it does not exist. what names it in errors.
func tokenFile(path, what string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("%s token file %s is empty; delete it to have a new one made", what, path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s token: %w", what, err)
	}
	raw := make([]byte, 24)
	rand.Read(raw)
	tok := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create %s token: %w", what, err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write %s token: %w", what, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("sync %s token: %w", what, err)
	}
	return tok, f.Close()
}

// publish is the modules' Publish: msg on subject through the daemon's
// own NATS connection, flushed so that a nil error means the server has
// it. A module publishes under cairn. but never on a stream's subjects
// (cairn.<stream>.>), which carry only journaled events.
func (s *Server) publish(subject string, msg []byte) error {
	rest, ok := strings.CutPrefix(subject, "cairn.")
	if !ok || !server.IsValidLiteralSubject(subject) {
		return fmt.Errorf("NATS subject %q: a module publishes on literal subjects under cairn.>", subject)
	}
	if first, _, _ := strings.Cut(rest, "."); s.journal.Stream(first) != nil {
		return fmt.Errorf("NATS subject %q: cairn.%s.> carries the %s stream's events only", subject, first, first)
	}
	b := s.pub.Load()
	if b == nil {
		return errors.New("the embedded NATS server has not started yet")
	}
	if err := b.nc.Publish(subject, msg); err != nil {
		return fmt.Errorf("publish on %s: %w", subject, err)
	}
	if err := b.nc.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("publish on %s: %w", subject, err)
	}
	return nil
}

func (s *Server) natsURL() string {
	if s.bus == nil {
		return "off"
	}
	return s.bus.url
}

// natsLogger adapts nats-server's logger to slog, without secrets: the
// server never logs the token itself.
type natsLogger struct{ l *slog.Logger }

func (n natsLogger) Noticef(format string, v ...any) { n.l.Info(fmt.Sprintf(format, v...)) }
func (n natsLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n natsLogger) Fatalf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Errorf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Debugf(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLogger) Tracef(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }
