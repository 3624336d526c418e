package daemon

import (
	"context"
	"os"
	"os/user"
	"strconv"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/daemon/authz"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/journal"
)

// DenyKind is the kind of the event a denied request leaves.
const DenyKind = "auth.deny"

// authorize asks the policy whether actor may run st, journals a denial
// and returns it as a permission_denied error naming the reason. It is the
// one place the daemon decides; every statement passes here before its
// handler runs.
func (s *Server) authorize(ctx context.Context, actor journal.Actor, st *dsl.Statement) error {
	args := make(map[string]string, len(st.Args)+len(st.Options))
	for name, w := range st.Args {
		args[name] = w.Text
	}
	for name, ws := range st.Options {
		if len(ws) > 0 {
			args[name] = ws[len(ws)-1].Text
		}
	}
	return s.decide(ctx, actor, st.Spec.Verb, args, accessOf(st.Spec.Access))
}

// decide is authorize for any request: a statement, or a write through a
// network listener (via http).
func (s *Server) decide(ctx context.Context, actor journal.Actor, verb string, args map[string]string, access authz.Access) error {
	if actor.UID == 0 || actor.UID == os.Geteuid() {
		return nil // root, or the user a non-root daemon runs as: its owner
	}
	caller := authz.Caller{
		UID: actor.UID, GID: actor.GID, PID: actor.PID, User: actor.User, Comm: actor.Comm,
		Groups: actor.Groups, Via: actor.Via, Addr: actor.Addr,
	}
	if caller.Groups == nil && caller.UID > 0 {
		caller.Groups = userGroups(caller.UID)
	}
	req := authz.Request{Caller: caller, Verb: verb, Args: args, Access: access}
	d := s.cfg.Policy.Decide(req)
	if d.Allow && access != authz.Read && actor.Via != "socket" && actor.UID != 0 && !s.inSocketGroup(caller) && d.Rule == "" {
		// A network caller outside the socket's group may read what the
		// anchor tool serves without credentials, never change anything
		// (DESIGN.md, "Listeners, and who is calling"), unless a rule says.
		d = authz.Decision{Reason: verb + " changes cairn's state: over " + actor.Via + " that needs root, the socket's group (--socket-group), or a rule in --policy"}
	}
	if d.Allow {
		return nil
	}
	data := map[string]any{"verb": verb, "access": access.String(), "reason": d.Reason}
	if d.Rule != "" {
		data["rule"] = d.Rule
	}
	if _, err := s.journal.Stream(journal.Audit).Append(context.WithoutCancel(ctx), &journal.Body{
		Kind: DenyKind, Subject: verb, Actor: actor, Data: data,
	}); err != nil {
		s.log.Warn("record a denial", "verb", verb, "uid", actor.UID, "err", err)
	}
	return wire.Errorf(wire.PermissionDenied, "%s: permission denied for uid %d: %s", verb, actor.UID, d.Reason)
}

// inSocketGroup reports whether the caller belongs to the socket's group.
func (s *Server) inSocketGroup(c authz.Caller) bool {
	if s.socketGID < 0 {
		return false
	}
	if c.GID == s.socketGID {
		return true
	}
	for _, g := range c.Groups {
		if g == s.socketGID {
			return true
		}
	}
	return false
}

// accessOf maps a spec's access class to the policy's.
func accessOf(a dsl.Access) authz.Access {
	switch a {
	case dsl.AccessRead:
		return authz.Read
	case dsl.AccessWrite:
		return authz.Write
	}
	return authz.Host // undeclared counts as the most
}

// userGroups are the groups of uid as the user database says (for network
// callers, whose connection carries no groups).
func userGroups(uid int) []int {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return nil
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil
	}
	out := make([]int, 0, len(ids))
	for _, id := range ids {
		if g, err := strconv.Atoi(id); err == nil {
			out = append(out, g)
		}
	}
	return out
}
