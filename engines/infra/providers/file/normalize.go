package fileprovider

import "github.com/cairnhq/cairn/engines/infra/provider"

var (
	_ provider.Normalizer = fileResource{}
	_ provider.Normalizer = dirResource{}
)

// normalizeOwner spells a configured owner as Read does ("root" and "0:0"
// are "root:root"), when it resolves; otherwise it is left for Validate
// and Create to report.
func normalizeOwner(v provider.Values) provider.Values {
	s, ok := v["owner"].(string)
	if !ok || s == "" {
		return v
	}
	spec, err := parseOwner(s)
	if err != nil {
		return v
	}
	uid, gid, err := spec.resolve()
	if err != nil {
		return v
	}
	out := v.Clone()
	out["owner"] = formatOwner(uid, gid)
	return out
}

func (fileResource) Normalize(v provider.Values) provider.Values { return normalizeOwner(v) }

func (dirResource) Normalize(v provider.Values) provider.Values { return normalizeOwner(v) }
