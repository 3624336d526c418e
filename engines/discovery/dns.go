package discovery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// dnsDomain is the domain the DNS answers for.
const dnsDomain = "consul."

// dnsServer answers Consul's DNS names from the mirror, on UDP and TCP at
// one address.
type dnsServer struct {
	addr string
	udp  *dns.Server
	tcp  *dns.Server
	done chan struct{}
}

// listenDNS binds UDP and TCP on addr (the same port: with port 0, TCP
// takes the port UDP got) and starts serving.
func listenDNS(m *Module, addr string) (*dnsServer, error) {
	var pc net.PacketConn
	var ln net.Listener
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			return nil, err
		}
		bound := pc.LocalAddr().String()
		if ln, err = net.Listen("tcp", bound); err == nil {
			break
		}
		pc.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	d := &dnsServer{addr: pc.LocalAddr().String(), done: make(chan struct{})}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) { m.serveDNS(w, req) })
	d.udp = &dns.Server{PacketConn: pc, Handler: h, ReadTimeout: 2 * time.Second}
	d.tcp = &dns.Server{Listener: ln, Handler: h, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, IdleTimeout: func() time.Duration { return 8 * time.Second }}
	started := make(chan error, 2)
	for _, s := range []*dns.Server{d.udp, d.tcp} {
		s.NotifyStartedFunc = func() { started <- nil }
		go func() {
			if err := s.ActivateAndServe(); err != nil && !errors.Is(err, net.ErrClosed) {
				m.log.Warn("discovery: DNS listener stopped", "addr", d.addr, "err", err)
				started <- err
			}
		}()
	}
	for i := 0; i < 2; i++ {
		if err := <-started; err != nil {
			d.shutdown()
			return nil, err
		}
	}
	return d, nil
}

func (d *dnsServer) shutdown() {
	d.udp.Shutdown()
	d.tcp.Shutdown()
}

// dnsAnswer is what a name asks for, parsed: a service (with a tag) or
// a node.
type dnsQuery struct {
	service, tag, node string
}

// parseDNSName reads NAME.service.consul, TAG.NAME.service.consul,
// _NAME._TAG.service.consul (RFC 2782; _tcp and _udp mean any tag) and
// NODE.node.consul, each with an optional datacenter before "consul".
func parseDNSName(name string) (dnsQuery, bool) {
	name = strings.ToLower(dns.Fqdn(name))
	if !strings.HasSuffix(name, "."+dnsDomain) {
		return dnsQuery{}, false
	}
	labels := dns.SplitDomainName(strings.TrimSuffix(name, "."+dnsDomain))
	if n := len(labels); n >= 2 && labels[n-1] == datacenter {
		labels = labels[:n-1]
	}
	n := len(labels)
	if n < 2 {
		return dnsQuery{}, false
	}
	switch labels[n-1] {
	case "service":
		rest := labels[:n-1]
		switch {
		case len(rest) == 2 && strings.HasPrefix(rest[0], "_") && strings.HasPrefix(rest[1], "_"):
			tag := rest[1][1:]
			if tag == "tcp" || tag == "udp" {
				tag = ""
			}
			return dnsQuery{service: rest[0][1:], tag: tag}, true
		case len(rest) == 1:
			return dnsQuery{service: rest[0]}, true
		case len(rest) == 2:
			return dnsQuery{service: rest[1], tag: rest[0]}, true
		}
	case "node":
		if n == 2 {
			return dnsQuery{node: labels[0]}, true
		}
	}
	return dnsQuery{}, false
}

func (m *Module) soa() dns.RR {
	return &dns.SOA{Hdr: dns.RR_Header{Name: dnsDomain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 0},
		Ns: "ns." + dnsDomain, Mbox: "hostmaster." + dnsDomain, Serial: uint32(time.Now().Unix()),
		Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 0}
}

// dnsKey is what makes two queries' answers the same, but for the id.
type dnsKey struct {
	name        string // as asked: a resolver may check the case it sent
	qtype       uint16
	size        int // the UDP size the answer was cut to; 0 over TCP
	rd, cd, opt bool
}

// dnsCache holds packed answers of the mirror's state at seq: a change
// empties it, so an answer is never staler than the memory it came from.
type dnsCache struct {
	mu  sync.Mutex
	seq int64
	m   map[dnsKey][]byte
}

// maxDNSCache bounds the cached answers; a full cache starts over.
const maxDNSCache = 4096

func (c *dnsCache) get(seq int64, k dnsKey) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq != seq {
		c.seq, c.m = seq, nil
		return nil
	}
	return c.m[k]
}

func (c *dnsCache) put(seq int64, k dnsKey, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq != seq {
		return
	}
	if c.m == nil || len(c.m) >= maxDNSCache {
		c.m = map[dnsKey][]byte{}
	}
	c.m[k] = b
}

// serveDNS answers one query from memory, from the cache of packed
// answers when the state has not changed since.
func (m *Module) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	var key dnsKey
	var seq int64
	cacheable := len(req.Question) == 1 && req.Opcode == dns.OpcodeQuery
	if cacheable {
		o := req.IsEdns0()
		key = dnsKey{name: req.Question[0].Name, qtype: req.Question[0].Qtype, rd: req.RecursionDesired, cd: req.CheckingDisabled, opt: o != nil}
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			key.size = 512
			if o != nil {
				key.size = max(int(o.UDPSize()), 512)
			}
		}
		m.mir.read(func() { seq = m.mir.seq })
		if b := m.dnsCache.get(seq, key); b != nil {
			out := make([]byte, len(b))
			copy(out, b)
			binary.BigEndian.PutUint16(out, req.Id)
			w.Write(out)
			return
		}
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = false
	if len(req.Question) != 1 {
		resp.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(resp)
		return
	}
	q := req.Question[0]
	pq, ok := parseDNSName(q.Name)
	if !ok {
		if strings.HasSuffix(strings.ToLower(dns.Fqdn(q.Name)), "."+dnsDomain) || strings.EqualFold(dns.Fqdn(q.Name), dnsDomain) {
			resp.SetRcode(req, dns.RcodeNameError)
			resp.Ns = []dns.RR{m.soa()}
		} else {
			resp.SetRcode(req, dns.RcodeRefused)
		}
		w.WriteMsg(resp)
		return
	}
	found := false
	if pq.node != "" {
		found = strings.EqualFold(pq.node, m.node)
		if found {
			resp.Answer = append(resp.Answer, addrRRs(q.Name, m.nodeAddress(), q.Qtype)...)
		}
	} else {
		found = m.serviceRRs(resp, q, pq)
	}
	if !found {
		resp.SetRcode(req, dns.RcodeNameError)
	}
	if len(resp.Answer) == 0 {
		resp.Ns = []dns.RR{m.soa()}
	}
	if o := req.IsEdns0(); o != nil {
		resp.SetEdns0(4096, false)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := 512
		if o := req.IsEdns0(); o != nil {
			size = max(int(o.UDPSize()), 512)
		}
		resp.Truncate(size)
	}
	b, err := resp.Pack()
	if err != nil {
		m.log.Warn("discovery: pack a DNS answer", "name", q.Name, "err", err)
		resp = new(dns.Msg)
		resp.SetRcode(req, dns.RcodeServerFailure)
		w.WriteMsg(resp)
		return
	}
	if cacheable {
		m.dnsCache.put(seq, key, b)
	}
	w.Write(b)
}

// serviceRRs adds the passing instances of a service: A/AAAA of their
// addresses, or SRV with their port and the target's address in the
// additional section. It reports whether the service has any instance.
func (m *Module) serviceRRs(resp *dns.Msg, q dns.Question, pq dnsQuery) bool {
	found := false
	m.mir.read(func() {
		for _, s := range m.mir.servicesNamed(pq.service) {
			if pq.tag != "" && !hasTagFold(s.Tags, pq.tag) {
				continue
			}
			if aggregate(m.mir.checksOf(s.ID)) != statePassing {
				continue
			}
			found = true
			addr := s.Address
			if addr == "" {
				addr = m.nodeAddress()
			}
			switch q.Qtype {
			case dns.TypeSRV:
				target := strings.ToLower(m.node) + ".node." + datacenter + "." + dnsDomain
				if ip := net.ParseIP(addr); ip != nil && s.Address != "" {
					target = ipLabel(ip) + ".addr." + datacenter + "." + dnsDomain
				}
				resp.Answer = append(resp.Answer, &dns.SRV{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET},
					Priority: 1, Weight: 1, Port: uint16(s.Port), Target: target})
				resp.Extra = append(resp.Extra, addrRRs(target, addr, dns.TypeANY)...)
			default:
				resp.Answer = append(resp.Answer, addrRRs(q.Name, addr, q.Qtype)...)
			}
		}
	})
	return found
}

func hasTagFold(tags []string, t string) bool {
	for _, x := range tags {
		if strings.EqualFold(x, t) {
			return true
		}
	}
	return false
}

// ipLabel is Consul's hex label of an address (7f000001 for 127.0.0.1).
func ipLabel(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return fmt.Sprintf("%x", []byte(v4))
	}
	return fmt.Sprintf("%x", []byte(ip.To16()))
}

// addrRRs are the A or AAAA record of addr for name, as qtype asks (ANY:
// whichever addr is).
func addrRRs(name, addr string, qtype uint16) []dns.RR {
	ip := net.ParseIP(addr)
	if ip == nil {
		if qtype == dns.TypeA || qtype == dns.TypeANY || qtype == dns.TypeCNAME {
			return []dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: dns.Fqdn(addr)}}
		}
		return nil
	}
	if v4 := ip.To4(); v4 != nil {
		if qtype == dns.TypeA || qtype == dns.TypeANY {
			return []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: v4}}
		}
		return nil
	}
	if qtype == dns.TypeAAAA || qtype == dns.TypeANY {
		return []dns.RR{&dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET}, AAAA: ip}}
	}
	return nil
}
