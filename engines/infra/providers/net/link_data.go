package netprovider

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// linkData is the net_link data source: a link that exists, whoever made
// it.
type linkData struct{}

var _ provider.DataSource = linkData{}

var linkDataSchema = &provider.Schema{
	Description: "A network interface that exists, read but not managed.",
	Attributes: map[string]*provider.Attribute{
		"name":          {Type: provider.String, Required: true, Description: "The interface name."},
		"namespace":     namespaceAttr(),
		"kind":          {Type: provider.String, Computed: true, Description: `The kind: bridge, veth, tun, ... ("device" for one without a kind, such as lo).`},
		"mtu":           {Type: provider.Number, Computed: true, Description: "The MTU."},
		"up":            {Type: provider.Bool, Computed: true, Description: "Whether the link is up."},
		"master":        {Type: provider.String, Computed: true, Description: `The bridge it is a port of, "" for none.`},
		"hardware_addr": {Type: provider.String, Computed: true, Description: "The MAC address, lower case with colons."},
		"index":         {Type: provider.Number, Computed: true, Description: "The interface index."},
	},
}

func (linkData) Schema() *provider.Schema { return linkDataSchema }

func (linkData) Read(ctx context.Context, s provider.Session, args provider.Values) (provider.Values, error) {
	ns, name := args.String("namespace"), args.String("name")
	if err := checkLinkName("name", name); err != nil {
		return nil, err
	}
	l, d, err := readLink(s, ns, name)
	if err != nil {
		return nil, fmt.Errorf("read link %s%s: %w", name, in(ns), err)
	}
	if l == nil {
		return nil, fmt.Errorf("read link %s%s: no such link (ip%s link shows the links)", name, in(ns), nsFlag(ns))
	}
	all := linkValues(ns, l, d.name)
	out := provider.Values{}
	for a := range linkDataSchema.Attributes {
		out[a] = all[a]
	}
	return out, nil
}

// nsFlag is ip's option for the namespace: " -n ns1", or nothing.
func nsFlag(ns string) string {
	if ns == "" {
		return ""
	}
	return " -n " + ns
}
