package discovery

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

func init() {
	engines.Register(Name, func() engines.Module { return newModule() })
}

// ServicesService is the name under which the module offers service
// registration to other modules (a deploy engine registering its jobs),
// as a Registry.
const ServicesService = "services"

// Module is the discovery engine as the daemon runs it.
type Module struct {
	dnsAddr string

	log       *slog.Logger
	node      string
	st        *journal.Stream
	authorize func(ctx context.Context, actor journal.Actor, verb string, args map[string]string, access dsl.Access) error
	mir       *mirror
	checks    *checker
	sess      *sessionTimers
	dns       *dnsServer
	wg        sync.WaitGroup
	startedAt time.Time

	// lockDelay holds, per key, until when no session may acquire it
	// after its holder's session ended (Consul's lock-delay; in memory,
	// as Consul's).
	lockMu    sync.Mutex
	lockDelay map[string]time.Time

	blockingSlots slots
	dnsCache      dnsCache
}

var (
	_ engines.Module     = (*Module)(nil)
	_ engines.HTTPRouter = (*Module)(nil)
	_ engines.Provider   = (*Module)(nil)
	_ engines.KindOwner  = (*Module)(nil)
)

func newModule() *Module {
	return &Module{mir: newMirror(), lockDelay: map[string]time.Time{}, log: slog.Default(), blockingSlots: make(slots, maxBlocking)}
}

// Name is the module's name.
func (m *Module) Name() string { return Name }

// Flags adds --dns.
func (m *Module) Flags(fs *flag.FlagSet) {
	fs.StringVar(&m.dnsAddr, "dns", defaultDNS(), "Consul-style DNS on `ADDR` (UDP and TCP; env CAIRN_DNS), or off")
}

// defaultDNS is $CAIRN_DNS, else 127.0.0.1:8600 (Consul's DNS port).
func defaultDNS() string {
	if a := os.Getenv("CAIRN_DNS"); a != "" {
		return a
	}
	return "127.0.0.1:8600"
}

// KindPrefixes are the kinds only this engine writes.
func (m *Module) KindPrefixes() []string { return []string{"discovery.", "consul_kv."} }

// Provides the registry other modules register services through.
func (m *Module) Provides() []string { return []string{ServicesService} }

// Engines folds the engine's events on the audit stream.
func (m *Module) Engines() map[string][]journal.Engine {
	return map[string][]journal.Engine{journal.Audit: {engine{mir: m.mir}}}
}

// Start loads the state, follows the journal, resumes the checks and
// session timers and opens the DNS listener.
func (m *Module) Start(ctx context.Context, h engines.Host) error {
	if h.Logger != nil {
		m.log = h.Logger
	}
	m.node = h.Node
	if m.node == "" {
		m.node, _ = os.Hostname()
	}
	m.authorize = h.Authorize
	m.startedAt = time.Now()
	m.st = h.Journal.Stream(journal.Audit)
	if m.st == nil {
		return errors.New("discovery: the journal has no audit stream")
	}
	sn := m.st.Snapshot()
	err := m.mir.load(sn)
	from := sn.Seq() + 1
	sn.Close()
	if err != nil {
		return fmt.Errorf("discovery: load state: %w", err)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.mir.follow(ctx, m.st, from, m.log)
	}()
	m.checks = newChecker(m)
	m.sess = newSessionTimers(m)
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		m.checks.run(ctx)
	}()
	go func() {
		defer m.wg.Done()
		m.sess.run(ctx)
	}()
	if h.Services != nil {
		h.Services.Provide(ServicesService, Registry{m})
	}
	if m.dnsAddr != "" && m.dnsAddr != "off" {
		d, err := listenDNS(m, m.dnsAddr)
		if err != nil {
			return fmt.Errorf("--dns %s: %w (choose another address with --dns ADDR, or --dns off)", m.dnsAddr, err)
		}
		m.dns = d
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			<-ctx.Done()
			d.shutdown()
		}()
	}
	return nil
}

// Stop waits for the module's goroutines, which end with Start's context.
func (m *Module) Stop() error {
	m.wg.Wait()
	return nil
}

// Listeners names the module's listener and its bound address.
func (m *Module) Listeners() map[string]string {
	if m.dns == nil {
		return map[string]string{"dns": "off"}
	}
	return map[string]string{"dns": m.dns.addr}
}

// propose decides fn in the commit pipeline as actor and returns its
// reply once the event is durable; the mirror's next read waits for it,
// so the caller reads its write.
func (m *Module) propose(ctx context.Context, actor journal.Actor, fn func(r reader, seq int64) (*change, error)) (any, int64, error) {
	committed, reply, err := m.st.Propose(ctx, Name, proposal{actor: actor, fn: fn})
	if err != nil {
		return nil, 0, err
	}
	if nc, ok := reply.(noChange); ok {
		return nc.reply, 0, nil
	}
	if len(committed) == 0 {
		return reply, 0, nil
	}
	seq := committed[len(committed)-1].Seq
	m.mir.committed(seq)
	return reply, seq, nil
}

// nodeAddress is the address the node's services are reached at when
// they name none: the loopback address the daemon serves on.
func (m *Module) nodeAddress() string {
	if m.dns != nil {
		if host, _, err := net.SplitHostPort(m.dns.addr); err == nil && host != "" && host != "::" && host != "0.0.0.0" {
			return host
		}
	}
	return "127.0.0.1"
}

// lockDelayed reports whether key is in a lock delay.
func (m *Module) lockDelayed(key string) bool {
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	until, ok := m.lockDelay[key]
	if !ok {
		return false
	}
	if time.Now().After(until) {
		delete(m.lockDelay, key)
		return false
	}
	return true
}

func (m *Module) setLockDelay(keys []string, d time.Duration) {
	if d <= 0 || len(keys) == 0 {
		return
	}
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	until := time.Now().Add(d)
	for _, k := range keys {
		m.lockDelay[k] = until
	}
}
