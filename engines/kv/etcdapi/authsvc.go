package etcdapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/metadata"

	"github.com/cairnhq/cairn/journal"
)

// AuthStore is etcd's auth over the journal: the etcdauth engine's state,
// cached after every change this store makes (the engine's kinds are
// reserved, so nothing else changes it), and the simple tokens handed out
// by Authenticate.
type AuthStore struct {
	st  *journal.Stream
	cur atomic.Pointer[authState]

	mu     sync.Mutex
	tokens map[string]*token
	now    func() time.Time
}

type token struct {
	user    string
	expires time.Time
}

// tokenTTL is etcd's simple-token lifetime, renewed by every use.
const tokenTTL = 5 * time.Minute

// bcryptCost is etcd's default (--bcrypt-cost).
const bcryptCost = bcrypt.DefaultCost

// NewAuthStore loads the auth state of the audit stream st, whose engines
// include AuthEngine.
func NewAuthStore(ctx context.Context, st *journal.Stream) (*AuthStore, error) {
	a := &AuthStore{st: st, tokens: map[string]*token{}, now: time.Now}
	if err := a.refresh(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// AuthEngine is the engine that keeps etcd's auth in the journal.
func AuthEngine() journal.Engine { return authEngine{} }

func (a *AuthStore) refresh(ctx context.Context) error {
	_, reply, err := a.st.Propose(ctx, authEngineName, authRead{})
	if err != nil {
		return err
	}
	a.cur.Store(reply.(*authState))
	return nil
}

func (a *AuthStore) state() *authState { return a.cur.Load() }

// change decides and journals op, then refreshes the cache.
func (a *AuthStore) change(ctx context.Context, actor journal.Actor, op authOp) error {
	op.Actor = actor
	if _, _, err := a.st.Propose(ctx, authEngineName, op); err != nil {
		return err
	}
	if op.Kind == KindAuthDisable || op.Kind == KindAuthUserDelete || op.Kind == KindAuthUserPasswd || op.Kind == KindAuthUserRevoke {
		a.dropTokens(op.Name, op.Kind == KindAuthDisable)
	}
	return a.refresh(ctx)
}

func (a *AuthStore) dropTokens(user string, all bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, t := range a.tokens {
		if all || t.user == user {
			delete(a.tokens, k)
		}
	}
}

// authenticate checks a password and hands out a token.
func (a *AuthStore) authenticate(name, password string) (string, error) {
	st := a.state()
	if !st.Enabled {
		return "", rpctypes.ErrGRPCAuthNotEnabled
	}
	u := st.Users[name]
	if u == nil || u.Hash == "" || bcrypt.CompareHashAndPassword([]byte(u.Hash), []byte(password)) != nil {
		return "", rpctypes.ErrGRPCAuthFailed
	}
	b := make([]byte, 8)
	rand.Read(b)
	tok := hex.EncodeToString(b) + "." + strconv.FormatInt(st.Rev, 10)
	a.mu.Lock()
	a.tokens[tok] = &token{user: name, expires: a.now().Add(tokenTTL)}
	a.mu.Unlock()
	return tok, nil
}

// userOf is the user of the request's token, when auth is on ("" when it
// is off).
func (a *AuthStore) userOf(ctx context.Context) (string, error) {
	if a == nil || !a.state().Enabled {
		return "", nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var tok string
	for _, k := range []string{rpctypes.TokenFieldNameGRPC, "authorization"} {
		if v := md.Get(k); len(v) > 0 {
			tok = strings.TrimPrefix(v[0], "Bearer ")
			break
		}
	}
	if tok == "" {
		return "", rpctypes.ErrGRPCUserEmpty
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tokens[tok]
	if t == nil || a.now().After(t.expires) {
		delete(a.tokens, tok)
		return "", rpctypes.ErrGRPCInvalidAuthToken
	}
	t.expires = a.now().Add(tokenTTL)
	return t.user, nil
}

// check decides whether user may make the RPC method with req: key
// reads and writes by the roles' permissions, admin RPCs by root only,
// leases and status by any user.
func (a *AuthStore) check(user, method string, req any) error {
	st := a.state()
	root := st.Users[user] != nil && slices.Contains(st.Users[user].Roles, rootName)
	need := func(typ int32, key, end []byte) error {
		if !st.allowed(user, typ, key, end) {
			return rpctypes.ErrGRPCPermissionDenied
		}
		return nil
	}
	switch r := req.(type) {
	case *pb.RangeRequest:
		return need(permRead, r.Key, r.RangeEnd)
	case *pb.PutRequest:
		return need(permWrite, r.Key, nil)
	case *pb.DeleteRangeRequest:
		return need(permWrite, r.Key, r.RangeEnd)
	case *pb.TxnRequest:
		return a.checkTxn(st, user, r)
	}
	switch {
	case strings.HasPrefix(method, "/etcdserverpb.Lease/"), method == "/etcdserverpb.Watch/Watch",
		method == "/etcdserverpb.Maintenance/Status", method == "/etcdserverpb.Cluster/MemberList",
		method == "/etcdserverpb.Auth/AuthStatus":
		return nil // a watch's range is checked when it is created
	}
	if !root {
		return rpctypes.ErrGRPCPermissionDenied
	}
	return nil
}

func (a *AuthStore) checkTxn(st *authState, user string, t *pb.TxnRequest) error {
	for _, c := range t.Compare {
		if !st.allowed(user, permRead, c.Key, c.RangeEnd) {
			return rpctypes.ErrGRPCPermissionDenied
		}
	}
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			var err error
			switch r := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
				err = a.check(user, "", r.RequestRange)
			case *pb.RequestOp_RequestPut:
				err = a.check(user, "", r.RequestPut)
			case *pb.RequestOp_RequestDeleteRange:
				err = a.check(user, "", r.RequestDeleteRange)
			case *pb.RequestOp_RequestTxn:
				err = a.checkTxn(st, user, r.RequestTxn)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// etcdUserKey carries the etcd user of a request in its context.
type etcdUserKey struct{}

func etcdUserOf(ctx context.Context) string { s, _ := ctx.Value(etcdUserKey{}).(string); return s }

// authService is etcd's Auth service.
type authService struct {
	pb.UnimplementedAuthServer
	*server
}

func (s *authService) hdr() *pb.ResponseHeader { return header(s.store.Rev()) }

func (s *authService) do(ctx context.Context, op authOp) error {
	if s.auth == nil {
		return rpctypes.ErrGRPCAuthNotEnabled
	}
	return toAuthErr(s.auth.change(ctx, s.callerOf(ctx), op))
}

// toAuthErr passes etcd's own errors through and maps the rest.
func toAuthErr(err error) error {
	if err == nil {
		return nil
	}
	var e rpctypes.EtcdError
	if errors.As(err, &e) {
		return err
	}
	for _, known := range []error{rpctypes.ErrGRPCRootUserNotExist, rpctypes.ErrGRPCRootRoleNotExist, rpctypes.ErrGRPCUserAlreadyExist,
		rpctypes.ErrGRPCUserEmpty, rpctypes.ErrGRPCUserNotFound, rpctypes.ErrGRPCRoleAlreadyExist, rpctypes.ErrGRPCRoleNotFound,
		rpctypes.ErrGRPCRoleEmpty, rpctypes.ErrGRPCRoleNotGranted, rpctypes.ErrGRPCPermissionNotGranted, rpctypes.ErrGRPCInvalidAuthMgmt} {
		if errors.Is(err, known) {
			return known
		}
	}
	return toGRPC(err)
}

func (s *authService) AuthEnable(ctx context.Context, _ *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	if s.auth != nil && s.auth.state().Enabled {
		return &pb.AuthEnableResponse{Header: s.hdr()}, nil
	}
	return &pb.AuthEnableResponse{Header: s.hdr()}, s.do(ctx, authOp{Kind: KindAuthEnable})
}

func (s *authService) AuthDisable(ctx context.Context, _ *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return &pb.AuthDisableResponse{Header: s.hdr()}, s.do(ctx, authOp{Kind: KindAuthDisable})
}

func (s *authService) AuthStatus(ctx context.Context, _ *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	st := s.auth.state()
	return &pb.AuthStatusResponse{Header: s.hdr(), Enabled: st.Enabled, AuthRevision: uint64(st.Rev)}, nil
}

func (s *authService) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	tok, err := s.auth.authenticate(r.Name, r.Password)
	if err != nil {
		return nil, err
	}
	return &pb.AuthenticateResponse{Header: s.hdr(), Token: tok}, nil
}

func (s *authService) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	hash := r.HashedPassword
	if hash == "" && (r.Options == nil || !r.Options.NoPassword) {
		h, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcryptCost)
		if err != nil {
			return nil, toGRPC(err)
		}
		hash = string(h)
	}
	return &pb.AuthUserAddResponse{Header: s.hdr()}, s.do(ctx, authOp{Kind: KindAuthUserAdd, Name: r.Name, Hash: hash})
}

func (s *authService) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	u := s.auth.state().Users[r.Name]
	if u == nil {
		return nil, rpctypes.ErrGRPCUserNotFound
	}
	return &pb.AuthUserGetResponse{Header: s.hdr(), Roles: append([]string(nil), u.Roles...)}, nil
}

func (s *authService) UserList(ctx context.Context, _ *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	var names []string
	for n := range s.auth.state().Users {
		names = append(names, n)
	}
	sort.Strings(names)
	return &pb.AuthUserListResponse{Header: s.hdr(), Users: names}, nil
}

func (s *authService) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return &pb.AuthUserDeleteResponse{Header: s.hdr()}, s.do(ctx, authOp{Kind: KindAuthUserDelete, Name: r.Name})
}

func (s *authService) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	hash := r.HashedPassword
	if hash == "" {
		h, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcryptCost)
		if err != nil {
			return nil, toGRPC(err)
		}
		hash = string(h)
	}
	return &pb.AuthUserChangePasswordResponse{Header: s.hdr()}, s.do(ctx, authOp{Kind: KindAuthUserPasswd, Name: r.Name, Hash: hash})
}

func (s *authService) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return &pb.AuthUserGrantRoleResponse{Header: s.hdr()}, s.do(ctx, authOp{Kind: KindAuthUserGrant, Name: r.User, Role: r.Role})
}

func (s *authService) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return &pb.AuthUserRevokeRoleResponse{Header: s.hdr()}, s.do(ctx, authOp{Kind: KindAuthUserRevoke, Name: r.Name, Role: r.Role})
}

func (s *authService) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return &pb.AuthRoleAddResponse{Header: s.hdr()}, s.do(ctx, authOp{Kind: KindAuthRoleAdd, Name: r.Name})
}

func (s *authService) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	role := s.auth.state().Roles[r.Role]
	if role == nil {
		return nil, rpctypes.ErrGRPCRoleNotFound
	}
	out := &pb.AuthRoleGetResponse{Header: s.hdr()}
	for _, p := range role.Perms {
		out.Perm = append(out.Perm, &authpb.Permission{PermType: authpb.Permission_Type(p.Type), Key: p.Key, RangeEnd: p.End})
	}
	return out, nil
}

func (s *authService) RoleList(ctx context.Context, _ *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	var names []string
	for n := range s.auth.state().Roles {
		names = append(names, n)
	}
	sort.Strings(names)
	return &pb.AuthRoleListResponse{Header: s.hdr(), Roles: names}, nil
}

func (s *authService) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return &pb.AuthRoleDeleteResponse{Header: s.hdr()}, s.do(ctx, authOp{Kind: KindAuthRoleDelete, Name: r.Role})
}

func (s *authService) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	if r.Perm == nil {
		return nil, rpctypes.ErrGRPCPermissionNotGiven
	}
	p := authPerm{Type: int32(r.Perm.PermType), Key: r.Perm.Key, End: r.Perm.RangeEnd}
	return &pb.AuthRoleGrantPermissionResponse{Header: s.hdr()}, s.do(ctx, authOp{Kind: KindAuthRoleGrant, Name: r.Name, Perm: p})
}

func (s *authService) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	p := authPerm{Key: r.Key, End: r.RangeEnd}
	return &pb.AuthRoleRevokePermissionResponse{Header: s.hdr()}, s.do(ctx, authOp{Kind: KindAuthRoleRevoke, Name: r.Role, Perm: p})
}
