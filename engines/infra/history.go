package infra

import (
	"context"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// runStateShow answers one object of state: as it is now, or, with at=,
// as history had it then.
func (m *module) runStateShow(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	ws, err := m.knownWorkspace(st)
	if err != nil {
		return err
	}
	addr := st.Args["ADDR"]
	var rs *ResourceState
	var ev *journal.Event
	if w, ok := st.Opt("at"); ok {
		rs, ev, err = m.stateAt(ws, addr.Text, w)
	} else if rs, err = m.stateNow(ws, addr.Text); rs == nil && err == nil {
		err = engines.Errorf(wire.NotFound, addr, "%s is not in the state of workspace %q; infra state list shows what is", addr.Text, ws)
	}
	if err != nil {
		return err
	}
	row := stateRow{Addr: addr.Text, Type: rs.Type, ID: rs.ID, Workspace: ws, Attrs: redactedAttrs(rs)}
	if ev != nil {
		row.Seq, row.Time = ev.Seq, time.Unix(0, ev.Time).UTC().Format(time.RFC3339Nano)
	}
	return r.Row(row)
}

// stateNow reads addr of ws from the projection; nil when it is not there.
func (m *module) stateNow(ws, addr string) (*ResourceState, error) {
	sn := m.audit.Snapshot()
	defer sn.Close()
	b, ok, err := sn.Get(Name, resKey(ws, addr))
	if err != nil || !ok {
		return nil, err
	}
	return decodeState(b)
}

// stateAt finds addr of ws as it was at the seq or time of at, and the
// event that made it so, walking the subject's history back from there.
func (m *module) stateAt(ws, addr string, at dsl.Word) (*ResourceState, *journal.Event, error) {
	q := journal.Query{Subject: subject(ws, addr), Reverse: true}
	if n, err := at.Int(); err == nil {
		q.To = n
	} else {
		t, err := at.Time(time.Now())
		if err != nil {
			return nil, nil, engines.Errorf(wire.InvalidArgument, at, "at=%s: %v", at.Text, err)
		}
		q.Until = t.UnixNano()
	}
	it := m.audit.Scan(q)
	defer it.Close()
	for it.Next() {
		ev, err := it.Raw().Decode()
		if err != nil {
			return nil, nil, err
		}
		switch ev.Kind {
		case KindCreate, KindUpdate, KindImport, KindRefresh, KindMove:
			if to, seq, moved, err := m.movedAway(ws, addr, ev.Seq+1, q.To, q.Until); err != nil {
				return nil, nil, err
			} else if moved {
				return nil, nil, wire.Errorf(wire.NotFound, "%s had moved to %s (seq %d) by %s; infra state show %s at=%s", addr, to, seq, at.Text, to, at.Text)
			}
			rs, err := stateFromData(ev.Data["after"])
			return rs, ev, err
		case KindDelete, KindForget:
			return nil, nil, wire.Errorf(wire.NotFound, "%s was not in the state of workspace %q at %s (deleted at seq %d)", addr, ws, at.Text, ev.Seq)
		}
	}
	if err := it.Err(); err != nil {
		return nil, nil, err
	}
	return nil, nil, wire.Errorf(wire.NotFound, "%s was not in the state of workspace %q at %s", addr, ws, at.Text)
}

// movedAway reports whether addr of ws was moved to another address by an
// infra.move in [from, to] (or up to until), and where to.
func (m *module) movedAway(ws, addr string, from, to, until int64) (string, int64, bool, error) {
	it := m.audit.Scan(journal.Query{Kind: KindMove, From: from, To: to, Until: until})
	defer it.Close()
	for it.Next() {
		ev, err := it.Raw().Decode()
		if err != nil {
			return "", 0, false, err
		}
		if ev.Data["workspace"] == ws && ev.Data["from"] == addr {
			dst, _ := ev.Data["addr"].(string)
			return dst, ev.Seq, true, nil
		}
	}
	return "", 0, false, it.Err()
}
