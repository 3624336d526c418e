package daemon

import (
	"testing"

	"github.com/cairnhq/cairn/journal"
)

func TestEscapeGlob(t *testing.T) {
	for in, want := range map[string]string{"app/db/url": "app/db/url", "a*b?c\\d": `a\*b\?c\\d`} {
		if got := escapeGlob(in); got != want {
			t.Errorf("escapeGlob(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestActorString(t *testing.T) {
	a := journal.Actor{UID: 1000, GID: 1000, PID: 42, User: "ana", Comm: "etcdctl", Via: "etcd", Addr: "127.0.0.1:5000"}
	if got, want := actorString(a, true), "user:ana uid:1000 pid:42 comm:etcdctl via:etcd addr:127.0.0.1:5000"; got != want {
		t.Errorf("actorString = %q, want %q", got, want)
	}
	if got, want := actorString(journal.Actor{PID: 42, Via: "system"}, false), "uid:0 via:system"; got != want {
		t.Errorf("actorString without pid = %q, want %q", got, want)
	}
}
