package netprovider

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

var namespaces = namespaceResource{}

// ipNetnsList returns the names ip netns list shows.
func ipNetnsList(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, n := range ipJSON(t, "", "netns", "list") {
		names = append(names, n["name"].(string))
	}
	return names
}

func listed(t *testing.T, name string) bool {
	for _, n := range ipNetnsList(t) {
		if n == name {
			return true
		}
	}
	return false
}

func TestNamespaceLifecycle(t *testing.T) {
	needKernel(t)
	name := nsName()
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	s := open(t)
	id, v := create(t, s, namespaces, provider.Values{"name": name})
	if id != name || v["name"] != name {
		t.Errorf("id %q values %v", id, v)
	}
	if !listed(t, name) {
		t.Fatalf("ip netns list does not show %s", name)
	}
	if _, found := read(t, namespaces, id); !found {
		t.Error("read: not found")
	}
	_, err := namespaces.Create(context.Background(), s, provider.Values{"name": name})
	if err == nil || !strings.Contains(err.Error(), "file exists") {
		t.Errorf("create twice: %v", err)
	}
	// The new namespace is usable, in the same session, and ip sees the
	// link in it.
	create(t, s, links, provider.Values{"name": "br0", "kind": "bridge", "namespace": name})
	if ipLink(t, name, "br0") == nil {
		t.Error("ip does not show br0 in the new namespace")
	}
	if err := namespaces.Delete(context.Background(), s, id, v); err != nil {
		t.Fatal(err)
	}
	if listed(t, name) {
		t.Error("ip netns list still shows the namespace after delete")
	}
	if _, found := read(t, namespaces, id); found {
		t.Error("read after delete: found")
	}
	// The same session now sees the name as unused.
	if _, found, err := links.Read(context.Background(), s, name+"/br0"); found || err != nil {
		t.Errorf("read of a link in the deleted namespace: found=%t, %v", found, err)
	}
	if err := namespaces.Delete(context.Background(), s, id, v); err != nil {
		t.Errorf("delete of a namespace already gone: %v", err)
	}
}

// A read in a namespace that does not exist finds nothing; a write there
// fails naming it.
func TestMissingNamespace(t *testing.T) {
	needKernel(t)
	ns := nsName() // never made
	s := open(t)
	for _, c := range []struct {
		r  provider.Resource
		id string
	}{
		{links, ns + "/br0"},
		{addresses, ns + "/br0/10.0.0.1/24"},
		{routes, ns + "/default"},
		{namespaces, ns},
	} {
		if _, found, err := c.r.Read(context.Background(), s, c.id); found || err != nil {
			t.Errorf("read %s: found=%t, %v", c.id, found, err)
		}
	}
	_, err := links.Create(context.Background(), s, config(t, links, provider.Values{"name": "br0", "kind": "bridge", "namespace": ns}))
	if err == nil || !strings.Contains(err.Error(), `network namespace "`+ns+`" does not exist`) {
		t.Errorf("create in a missing namespace: %v", err)
	}
	_, err = addresses.Create(context.Background(), s, config(t, addresses, provider.Values{"link": "br0", "cidr": "10.0.0.1/24", "namespace": ns}))
	if err == nil || !strings.Contains(err.Error(), ns) {
		t.Errorf("create address in a missing namespace: %v", err)
	}
	_, err = linkData{}.Read(context.Background(), s, provider.Values{"name": "lo", "namespace": ns})
	if err == nil || !strings.Contains(err.Error(), ns) {
		t.Errorf("data source in a missing namespace: %v", err)
	}
	if err := links.Delete(context.Background(), s, ns+"/br0", nil); err != nil {
		t.Errorf("delete in a missing namespace: %v", err)
	}
}

// A name deleted and added again behind the session's back denotes the new
// namespace.
func TestNamespaceRecreatedUnderSession(t *testing.T) {
	ns := testNS(t)
	ip(t, "-n", ns, "link", "add", "old0", "type", "bridge")
	s := open(t)
	if _, found, _ := links.Read(context.Background(), s, ns+"/old0"); !found {
		t.Fatal("old0: not found")
	}
	ip(t, "netns", "del", ns)
	ip(t, "netns", "add", ns)
	ip(t, "-n", ns, "link", "add", "new0", "type", "bridge")
	if _, found, _ := links.Read(context.Background(), s, ns+"/old0"); found {
		t.Error("old0 found in the new namespace")
	}
	if _, found, _ := links.Read(context.Background(), s, ns+"/new0"); !found {
		t.Error("new0 not found in the new namespace")
	}
}
