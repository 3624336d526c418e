package netprovider

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// noNamespaceError says a named namespace does not exist. Reads turn it
// into found=false; writes return it.
type noNamespaceError struct{ ns string }

func (e *noNamespaceError) Error() string {
	return fmt.Sprintf("network namespace %q does not exist (ip netns list shows the names; a net_namespace resource makes one)", e.ns)
}

func isNoNamespace(err error) bool {
	var e *noNamespaceError
	return errors.As(err, &e)
}

// isGone reports whether err says the object is not there: a link, an
// address or a route already deleted.
func isGone(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) ||
		errors.Is(err, unix.ENODEV) ||
		errors.Is(err, unix.ESRCH) ||
		errors.Is(err, unix.EADDRNOTAVAIL) ||
		errors.Is(err, unix.ENOENT)
}

// unsupportedKind wraps the kernel's answer to a link kind it lacks (no
// module, not built in) in a provider.Unsupported, keeping the errno.
func unsupportedKind(kind string, err error) error {
	if !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	return fmt.Errorf("%w: %w", &provider.Unsupported{
		Reason: fmt.Sprintf("this kernel cannot make %s links (not built in, module not loaded)", kind),
	}, err)
}

// noLinkError says a link an object refers to (a master, a parent, the
// link of an address or route) does not exist.
type noLinkError struct{ name string }

func (e *noLinkError) Error() string {
	return fmt.Sprintf("no link %s in the namespace", e.name)
}
