package etcdapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/cairnhq/cairn/journal"
)

// etcd's auth (users, roles, key-range permissions), as the journal keeps
// it: every change is an etcd.auth.* event on the audit stream, decided
// and folded by the etcdauth engine into one projection record, so users
// and roles survive a restart and journal rebuild gives the same. A
// password is journaled only as its bcrypt hash, as etcd stores it.

const authEngineName = "etcdauth"

// The kinds of the auth engine's events.
const (
	KindAuthEnable      = "etcd.auth.enable"
	KindAuthDisable     = "etcd.auth.disable"
	KindAuthUserAdd     = "etcd.auth.user.add"
	KindAuthUserDelete  = "etcd.auth.user.delete"
	KindAuthUserPasswd  = "etcd.auth.user.password"
	KindAuthUserGrant   = "etcd.auth.user.grant"
	KindAuthUserRevoke  = "etcd.auth.user.revoke"
	KindAuthRoleAdd     = "etcd.auth.role.add"
	KindAuthRoleDelete  = "etcd.auth.role.delete"
	KindAuthRoleGrant   = "etcd.auth.role.grant"
	KindAuthRoleRevoke  = "etcd.auth.role.revoke"
	rootName            = "root"
	authStateKey        = "state"
	permRead, permWrite = int32(authpb.READ), int32(authpb.WRITE)
)

// AuthKinds lists the auth engine's kinds (docs/events.md).
func AuthKinds() []string {
	return []string{KindAuthEnable, KindAuthDisable, KindAuthUserAdd, KindAuthUserDelete, KindAuthUserPasswd,
		KindAuthUserGrant, KindAuthUserRevoke, KindAuthRoleAdd, KindAuthRoleDelete, KindAuthRoleGrant, KindAuthRoleRevoke}
}

// authState is the projection: all of etcd's auth state.
type authState struct {
	Enabled bool                 `json:"enabled"`
	Rev     int64                `json:"rev"` // etcd's auth revision: bumped by every change
	Users   map[string]*authUser `json:"users"`
	Roles   map[string]*authRole `json:"roles"`
}

type authUser struct {
	Hash  string   `json:"hash"` // bcrypt; "" for a user with no password
	Roles []string `json:"roles"`
}

type authRole struct {
	Perms []authPerm `json:"perms"`
}

// authPerm is a key-range permission: End empty is the one key, "\x00"
// every key from Key on, else [Key, End).
type authPerm struct {
	Type int32  `json:"type"` // 0 READ, 1 WRITE, 2 READWRITE
	Key  []byte `json:"key"`
	End  []byte `json:"end,omitempty"`
}

func newAuthState() *authState {
	return &authState{Users: map[string]*authUser{}, Roles: map[string]*authRole{}}
}

// authOp is a change asked of the engine.
type authOp struct {
	Kind  string
	Name  string // user or role
	Role  string // for user grant/revoke
	Hash  string // user add, password
	Perm  authPerm
	Actor journal.Actor
}

// authRead asks the engine for the state, writing nothing.
type authRead struct{}

type authEngine struct{}

var _ journal.KindFilter = authEngine{}

func (authEngine) Name() string { return authEngineName }

func (authEngine) FoldsKind(kind string) bool { return strings.HasPrefix(kind, "etcd.auth.") }

func loadAuth(v *journal.View) (*authState, error) {
	b, ok, err := v.Get([]byte(authStateKey))
	if err != nil || !ok {
		return newAuthState(), err
	}
	st := newAuthState()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("auth state: %w", err)
	}
	return st, nil
}

func (authEngine) Decide(v *journal.View, req any) (journal.Decision, error) {
	st, err := loadAuth(v)
	if err != nil {
		return journal.Decision{}, err
	}
	switch r := req.(type) {
	case authRead:
		return journal.Decision{Reply: st}, nil
	case authOp:
		if err := st.check(r); err != nil {
			return journal.Decision{}, err
		}
		data := map[string]any{"name": r.Name}
		switch r.Kind {
		case KindAuthUserAdd, KindAuthUserPasswd:
			data["hash"] = r.Hash
		case KindAuthUserGrant, KindAuthUserRevoke:
			data["role"] = r.Role
		case KindAuthRoleGrant, KindAuthRoleRevoke:
			data["perm_type"] = int64(r.Perm.Type)
			data["key"] = string(r.Perm.Key)
			data["range_end"] = string(r.Perm.End)
		case KindAuthEnable, KindAuthDisable:
			delete(data, "name")
		}
		return journal.Decision{Bodies: []*journal.Body{{Kind: r.Kind, Subject: r.Name, Actor: r.Actor, Data: data}}}, nil
	}
	return journal.Decision{}, fmt.Errorf("etcdauth: unknown request %T", req)
}

// check decides whether op may apply to st, with etcd's errors.
func (st *authState) check(op authOp) error {
	u, role := st.Users[op.Name], st.Roles[op.Name]
	switch op.Kind {
	case KindAuthEnable:
		ru := st.Users[rootName]
		if ru == nil {
			return rpctypes.ErrGRPCRootUserNotExist
		}
		if !slices.Contains(ru.Roles, rootName) {
			return rpctypes.ErrGRPCRootRoleNotExist
		}
	case KindAuthDisable:
	case KindAuthUserAdd:
		if op.Name == "" {
			return rpctypes.ErrGRPCUserEmpty
		}
		if u != nil {
			return rpctypes.ErrGRPCUserAlreadyExist
		}
	case KindAuthUserDelete, KindAuthUserPasswd:
		if u == nil {
			return rpctypes.ErrGRPCUserNotFound
		}
		if op.Kind == KindAuthUserDelete && st.Enabled && op.Name == rootName {
			return rpctypes.ErrGRPCInvalidAuthMgmt
		}
	case KindAuthUserGrant:
		if u == nil {
			return rpctypes.ErrGRPCUserNotFound
		}
		if op.Role != rootName && st.Roles[op.Role] == nil {
			return rpctypes.ErrGRPCRoleNotFound
		}
	case KindAuthUserRevoke:
		if u == nil {
			return rpctypes.ErrGRPCUserNotFound
		}
		if !slices.Contains(u.Roles, op.Role) {
			return rpctypes.ErrGRPCRoleNotGranted
		}
		if st.Enabled && op.Name == rootName && op.Role == rootName {
			return rpctypes.ErrGRPCInvalidAuthMgmt
		}
	case KindAuthRoleAdd:
		if op.Name == "" {
			return rpctypes.ErrGRPCRoleEmpty
		}
		if role != nil {
			return rpctypes.ErrGRPCRoleAlreadyExist
		}
	case KindAuthRoleDelete, KindAuthRoleGrant:
		if role == nil {
			return rpctypes.ErrGRPCRoleNotFound
		}
		if op.Kind == KindAuthRoleDelete && st.Enabled && op.Name == rootName {
			return rpctypes.ErrGRPCInvalidAuthMgmt
		}
	case KindAuthRoleRevoke:
		if role == nil {
			return rpctypes.ErrGRPCRoleNotFound
		}
		if !slices.ContainsFunc(role.Perms, func(p authPerm) bool { return p.same(op.Perm) }) {
			return rpctypes.ErrGRPCPermissionNotGranted
		}
	default:
		return fmt.Errorf("etcdauth: unknown change %q", op.Kind)
	}
	return nil
}

func (p authPerm) same(q authPerm) bool {
	return bytes.Equal(p.Key, q.Key) && bytes.Equal(p.End, q.End)
}

func (authEngine) Fold(t *journal.Txn, ev *journal.Event) error {
	st, err := loadAuth(&t.View)
	if err != nil {
		return err
	}
	str := func(k string) string { s, _ := ev.Data[k].(string); return s }
	name := str("name")
	switch ev.Kind {
	case KindAuthEnable:
		st.Enabled = true
	case KindAuthDisable:
		st.Enabled = false
	case KindAuthUserAdd:
		st.Users[name] = &authUser{Hash: str("hash")}
	case KindAuthUserDelete:
		delete(st.Users, name)
	case KindAuthUserPasswd:
		if u := st.Users[name]; u != nil {
			u.Hash = str("hash")
		}
	case KindAuthUserGrant:
		if u := st.Users[name]; u != nil && !slices.Contains(u.Roles, str("role")) {
			u.Roles = append(u.Roles, str("role"))
			sort.Strings(u.Roles)
		}
	case KindAuthUserRevoke:
		if u := st.Users[name]; u != nil {
			u.Roles = slices.DeleteFunc(u.Roles, func(r string) bool { return r == str("role") })
		}
	case KindAuthRoleAdd:
		st.Roles[name] = &authRole{}
	case KindAuthRoleDelete:
		delete(st.Roles, name)
		for _, u := range st.Users {
			u.Roles = slices.DeleteFunc(u.Roles, func(r string) bool { return r == name })
		}
	case KindAuthRoleGrant, KindAuthRoleRevoke:
		r := st.Roles[name]
		if r == nil {
			break
		}
		typ, _ := ev.Data["perm_type"].(int64)
		p := authPerm{Type: int32(typ), Key: []byte(str("key"))}
		if e := str("range_end"); e != "" {
			p.End = []byte(e)
		}
		r.Perms = slices.DeleteFunc(r.Perms, func(q authPerm) bool { return q.same(p) })
		if ev.Kind == KindAuthRoleGrant {
			r.Perms = append(r.Perms, p)
			sort.Slice(r.Perms, func(i, j int) bool { return bytes.Compare(r.Perms[i].Key, r.Perms[j].Key) < 0 })
		}
	default:
		return nil
	}
	st.Rev++
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return t.Set([]byte(authStateKey), b)
}

// allowed reports whether user may do typ (READ or WRITE) on [key, end)
// (end empty: the one key; "\x00": every key from key on), as etcd's
// range permission cache decides: the range must lie inside the union of
// the user's roles' permissions of that type. root may do anything.
func (st *authState) allowed(user string, typ int32, key, end []byte) bool {
	u := st.Users[user]
	if u == nil {
		return false
	}
	if slices.Contains(u.Roles, rootName) {
		return true
	}
	var ivs []interval
	for _, rn := range u.Roles {
		r := st.Roles[rn]
		if r == nil {
			continue
		}
		for _, p := range r.Perms {
			if p.Type == typ || p.Type == int32(authpb.READWRITE) {
				ivs = append(ivs, toInterval(p.Key, p.End))
			}
		}
	}
	return covered(ivs, toInterval(key, end))
}

// interval is [lo, hi); hi nil is unbounded.
type interval struct{ lo, hi []byte }

func toInterval(key, end []byte) interval {
	switch {
	case len(end) == 0:
		return interval{key, append(bytes.Clone(key), 0)}
	case len(end) == 1 && end[0] == 0:
		return interval{key, nil}
	}
	return interval{key, end}
}

// covered reports whether want lies inside the union of ivs.
func covered(ivs []interval, want interval) bool {
	sort.Slice(ivs, func(i, j int) bool { return bytes.Compare(ivs[i].lo, ivs[j].lo) < 0 })
	at := want.lo // everything before at is covered
	for _, iv := range ivs {
		if bytes.Compare(iv.lo, at) > 0 {
			break // a gap at at
		}
		if iv.hi == nil {
			return true
		}
		if bytes.Compare(iv.hi, at) > 0 {
			at = iv.hi
		}
		if want.hi != nil && bytes.Compare(at, want.hi) >= 0 {
			return true
		}
	}
	return want.hi != nil && bytes.Compare(at, want.hi) >= 0
}
