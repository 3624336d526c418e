package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// Consul's limits.
const (
	maxKVValue      = 512 * 1024 // kv_max_value_size
	maxBody         = 4 << 20
	maxTxnOps       = 128 // txn_max_req_len allows 64 by default; cairn allows 128
	defaultWait     = 5 * time.Minute
	maxWait         = 10 * time.Minute
	maxBlocking     = 16384 // open blocking queries; beyond, a query answers at once
	datacenter      = "dc1"
	consulVersion   = "1.22.0"
	knownLeaderTrue = "true"
)

// route is a pattern and its handler.
func route(pattern string, h http.HandlerFunc) engines.Route {
	return engines.Route{Pattern: pattern, Handler: h}
}

// HTTPRoutes are Consul's HTTP API on the daemon's listener.
func (m *Module) HTTPRoutes() []engines.Route {
	return []engines.Route{
		route("GET /v1/kv/{key...}", m.kvGet),
		route("PUT /v1/kv/{key...}", m.kvPut),
		route("DELETE /v1/kv/{key...}", m.kvDelete),
		route("PUT /v1/txn", m.txn),

		route("PUT /v1/agent/service/register", m.agentServiceRegister),
		route("PUT /v1/agent/service/deregister/{id}", m.agentServiceDeregister),
		route("GET /v1/agent/services", m.agentServices),
		route("GET /v1/agent/service/{id}", m.agentServiceGet),
		route("GET /v1/agent/checks", m.agentChecks),
		route("PUT /v1/agent/check/register", m.agentCheckRegister),
		route("PUT /v1/agent/check/deregister/{id}", m.agentCheckDeregister),
		route("PUT /v1/agent/check/pass/{id}", m.agentCheckTTL(statePassing)),
		route("PUT /v1/agent/check/warn/{id}", m.agentCheckTTL(stateWarning)),
		route("PUT /v1/agent/check/fail/{id}", m.agentCheckTTL(stateCritical)),
		route("PUT /v1/agent/check/update/{id}", m.agentCheckTTL("")),
		route("GET /v1/agent/self", m.agentSelf),
		route("GET /v1/agent/members", m.agentMembers),

		route("GET /v1/catalog/datacenters", m.catalogDatacenters),
		route("GET /v1/catalog/services", m.catalogServices),
		route("GET /v1/catalog/service/{name}", m.catalogService),
		route("GET /v1/catalog/nodes", m.catalogNodes),

		route("GET /v1/health/service/{name}", m.healthService),
		route("GET /v1/health/checks/{name}", m.healthChecks),
		route("GET /v1/health/state/{state}", m.healthState),
		route("GET /v1/health/node/{node}", m.healthNode),

		route("PUT /v1/session/create", m.sessionCreate),
		route("PUT /v1/session/destroy/{id}", m.sessionDestroy),
		route("PUT /v1/session/renew/{id}", m.sessionRenew),
		route("GET /v1/session/info/{id}", m.sessionInfo),
		route("GET /v1/session/list", m.sessionList),
		route("GET /v1/session/node/{node}", m.sessionList),
	}
}

// writeJSON answers v.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// jsonType is the Content-Type of a JSON answer, shared by every answer
// (net/http only reads a header's values).
var jsonType = []string{"application/json"}

// writeBool answers a write's true or false as writeJSON would, without
// an encoder: the answer of every KV write.
func writeBool(w http.ResponseWriter, ok bool) {
	w.Header()["Content-Type"] = jsonType
	if ok {
		io.WriteString(w, "true\n")
	} else {
		io.WriteString(w, "false\n")
	}
}

// httpError answers err with Consul's status for it and its text.
func (m *Module) httpError(w http.ResponseWriter, err error) {
	var br *badRequest
	var nf *notFound
	var kve *errKV
	code := http.StatusInternalServerError
	switch {
	case errors.As(err, &br):
		code = http.StatusBadRequest
	case errors.As(err, &nf):
		code = http.StatusNotFound
	case errors.As(err, &kve):
		code = http.StatusInternalServerError
	case wire.CodeOf(err) == wire.PermissionDenied:
		// Consul's text, which its clients match on.
		http.Error(w, "Permission denied: "+err.Error(), http.StatusForbidden)
		return
	default:
		m.log.Error("discovery: HTTP request failed", "err", err)
	}
	http.Error(w, err.Error(), code)
}

// actorOf is the request's caller, as the daemon found it.
func actorOf(r *http.Request) journal.Actor {
	a, ok := engines.ActorFrom(r.Context())
	if !ok {
		return journal.Actor{UID: -1, GID: -1, Via: "http", Addr: r.RemoteAddr}
	}
	return a
}

// allowWrite asks the daemon's policy whether the caller may do verb.
func (m *Module) allowWrite(r *http.Request, verb string, args map[string]string) (journal.Actor, error) {
	a := actorOf(r)
	if m.authorize == nil {
		return a, nil
	}
	return a, m.authorize(r.Context(), a, verb, args, dsl.AccessWrite)
}

// decode reads a JSON body into v, refusing unknown fields, as Consul's
// decoder does.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return badf("Request decode failed: empty body")
		}
		return badf("Request decode failed: %v", err)
	}
	return nil
}

// decodeDefinition reads a service or check definition as Consul's agent
// does: besides consul/api's field names, the snake_case spellings of its
// documentation and config files (tls_skip_verify, service_id) and Args
// for a script check's command (consul/api sends ScriptArgs). User maps
// (Meta, Header, TaggedAddresses) keep their keys.
func decodeDefinition(w http.ResponseWriter, r *http.Request, v any) error {
	var raw any
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return badf("Request decode failed: empty body")
		}
		return badf("Request decode failed: %v", err)
	}
	b, err := json.Marshal(translateKeys(raw))
	if err != nil {
		return badf("Request decode failed: %v", err)
	}
	strict := json.NewDecoder(bytes.NewReader(b))
	strict.DisallowUnknownFields()
	if err := strict.Decode(v); err != nil {
		return badf("Request decode failed: %v", err)
	}
	return nil
}

// userMaps are the fields whose keys are the user's, not field names.
var userMaps = map[string]bool{"meta": true, "header": true, "taggedaddresses": true, "nodemeta": true, "servicemeta": true}

func translateKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			nk := strings.ReplaceAll(k, "_", "")
			if strings.EqualFold(nk, "args") {
				nk = "ScriptArgs"
			}
			if userMaps[strings.ToLower(nk)] {
				out[nk] = e
				continue
			}
			out[nk] = translateKeys(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = translateKeys(e)
		}
	}
	return v
}

// queryMeta sets the headers every Consul read answers with.
func queryMeta(w http.ResponseWriter, index int64) {
	w.Header().Set("X-Consul-Index", strconv.FormatInt(max(index, 1), 10))
	w.Header().Set("X-Consul-KnownLeader", knownLeaderTrue)
	w.Header().Set("X-Consul-LastContact", "0")
	w.Header().Set("X-Consul-Effective-Consistency", "leader")
}

// blocking answers a read, as a blocking query when it has ?index=N: it
// returns once compute's index passes N, or when ?wait= (default 5m,
// at most 10m, as Consul) ends. compute runs with the mirror read-locked
// and is woken by the journal subscription, never by polling.
func (m *Module) blocking(w http.ResponseWriter, r *http.Request, compute func() (index int64, write func())) {
	q := r.URL.Query()
	var want int64
	if s := q.Get("index"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			http.Error(w, fmt.Sprintf("Invalid index: %v", err), http.StatusBadRequest)
			return
		}
		want = int64(n)
	}
	wait := defaultWait
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			http.Error(w, fmt.Sprintf("Invalid wait time: %v", err), http.StatusBadRequest)
			return
		}
		wait = min(d, maxWait)
	}
	var index int64
	var write func()
	ch := m.mir.read(func() { index, write = compute() })
	if want > 0 && index <= want && m.blockingSlots.TryAcquire() {
		defer m.blockingSlots.Release()
		// Consul adds up to wait/16 of jitter so that many waiters do not
		// wake together; the journal wakes them on a change.
		timer := time.NewTimer(wait)
		defer timer.Stop()
	loop:
		for index <= want {
			select {
			case <-ch:
			case <-timer.C:
				break loop
			case <-r.Context().Done():
				return
			}
			ch = m.mir.read(func() { index, write = compute() })
		}
	}
	queryMeta(w, index)
	write()
}

// slots is a counting semaphore.
type slots chan struct{}

func (s slots) TryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s slots) Release() { <-s }
