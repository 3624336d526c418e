package localprovider

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// fileResource is local_file, or local_sensitive_file (its content
// sensitive, its default permissions 0700).
type fileResource struct{ sensitive bool }

var (
	_ provider.Resource    = fileResource{}
	_ provider.StateBacked = fileResource{}
	_ provider.Private     = fileResource{}
)

// sources are the arguments that give the content; exactly one is set.
func (r fileResource) sources() []string {
	if r.sensitive {
		return []string{"content", "content_base64", "source"}
	}
	return []string{"content", "content_base64", "sensitive_content", "source"}
}

func hashes(attrs map[string]*provider.Attribute) map[string]*provider.Attribute {
	for n, d := range map[string]string{
		"content_md5":          "MD5 checksum of file content.",
		"content_sha1":         "SHA1 checksum of file content.",
		"content_sha256":       "SHA256 checksum of file content.",
		"content_base64sha256": "Base64 encoded SHA256 checksum of file content.",
		"content_sha512":       "SHA512 checksum of file content.",
		"content_base64sha512": "Base64 encoded SHA512 checksum of file content.",
	} {
		attrs[n] = &provider.Attribute{Type: provider.String, Computed: true, Description: d}
	}
	return attrs
}

func setHashes(v provider.Values, b []byte) {
	m := md5.Sum(b)
	s1 := sha1.Sum(b)
	s256 := sha256.Sum256(b)
	s512 := sha512.Sum512(b)
	v["content_md5"] = hex.EncodeToString(m[:])
	v["content_sha1"] = hex.EncodeToString(s1[:])
	v["content_sha256"] = hex.EncodeToString(s256[:])
	v["content_base64sha256"] = base64.StdEncoding.EncodeToString(s256[:])
	v["content_sha512"] = hex.EncodeToString(s512[:])
	v["content_base64sha512"] = base64.StdEncoding.EncodeToString(s512[:])
}

func (r fileResource) Schema() *provider.Schema {
	perm := "0777"
	desc := "A file on the daemon's host (hashicorp/local's local_file); id is the SHA-1 of its content."
	if r.sensitive {
		perm = "0700"
		desc = "A file whose content is sensitive (hashicorp/local's local_sensitive_file); id is the SHA-1 of its content."
	}
	attrs := map[string]*provider.Attribute{
		"filename":             {Type: provider.String, Required: true, ForceNew: true, Description: "The path to the file that will be created. Missing parent directories will be created. If the file already exists, it will be overridden with the given content."},
		"content":              {Type: provider.String, Optional: true, ForceNew: true, Sensitive: r.sensitive, Description: "Content to store in the file, expected to be a UTF-8 encoded string."},
		"content_base64":       {Type: provider.String, Optional: true, ForceNew: true, Sensitive: r.sensitive, Description: "Content to store in the file, expected to be binary encoded as base64 string."},
		"source":               {Type: provider.String, Optional: true, ForceNew: true, Description: "Path to file to use as source for the one we are creating."},
		"file_permission":      {Type: provider.String, Optional: true, ForceNew: true, Default: perm, Description: "Permissions to set for the output file (before umask), expressed as string in numeric notation."},
		"directory_permission": {Type: provider.String, Optional: true, ForceNew: true, Default: perm, Description: "Permissions to set for directories created (before umask), expressed as string in numeric notation."},
	}
	if !r.sensitive {
		attrs["sensitive_content"] = &provider.Attribute{Type: provider.String, Optional: true, ForceNew: true, Sensitive: true, Description: "Sensitive content to store in the file, expected to be an UTF-8 encoded string. Deprecated: use local_sensitive_file."}
	}
	return &provider.Schema{Description: desc, Attributes: hashes(attrs)}
}

// content answers the bytes the configuration gives, and whether they are
// known without reading anything (source is read at create).
func (r fileResource) content(v provider.Values) ([]byte, bool, error) {
	switch {
	case v.Has("content"):
		return []byte(v.String("content")), true, nil
	case v.Has("sensitive_content"):
		return []byte(v.String("sensitive_content")), true, nil
	case v.Has("content_base64"):
		b, err := base64.StdEncoding.DecodeString(v.String("content_base64"))
		if err != nil {
			return nil, false, fmt.Errorf("content_base64: %w", err)
		}
		return b, true, nil
	}
	return nil, false, nil
}

// ID is the SHA-1 of the content, as the provider's; with source it is
// known once the file is made.
func (r fileResource) ID(v provider.Values) (string, error) {
	b, ok, err := r.content(v)
	if err != nil || !ok {
		return "", err
	}
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:]), nil
}

func parsePerm(name, s string) (os.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 || len(s) < 3 || len(s) > 4 {
		return 0, fmt.Errorf("%s: %q is not a permission in numeric notation, such as \"0644\"", name, s)
	}
	return os.FileMode(n) & os.ModePerm, nil
}

func (r fileResource) Validate(v provider.Values, known map[string]bool) error {
	var set []string
	for _, n := range r.sources() {
		if v.Has(n) || known[n] {
			set = append(set, n)
		}
	}
	if len(set) != 1 {
		return fmt.Errorf("exactly one of `%s` must be specified", strings.Join(r.sources(), ","))
	}
	for _, n := range []string{"file_permission", "directory_permission"} {
		if v.Has(n) {
			if _, err := parsePerm(n, v.String(n)); err != nil {
				return err
			}
		}
	}
	if v.Has("filename") && v.String("filename") == "" {
		return errors.New("filename must not be empty")
	}
	_, _, err := r.content(v)
	return err
}

// PrivateAttrs: what a file other users cannot read holds is journaled
// as a digest (docs/security.md), so reading the journal never shows more
// than reading the file would.
func (r fileResource) PrivateAttrs(v provider.Values) []string { return privateContent(v) }

// PrivateAttrs: as for the resource.
func (d fileData) PrivateAttrs(v provider.Values) []string { return privateContent(v) }

func privateContent(v provider.Values) []string {
	if worldReadable(v.String("filename"), v.String("file_permission")) {
		return nil
	}
	return []string{"content", "content_base64"}
}

// worldReadable reports whether any local user may read the file at path:
// read permission for others on the file (perm, or its mode on disk when
// perm is empty) and search permission for others on every directory
// above it. Anything it cannot tell counts as private.
func worldReadable(path, perm string) bool {
	path, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	var m os.FileMode
	if perm != "" {
		if m, err = parsePerm("file_permission", perm); err != nil {
			return false
		}
	} else {
		fi, err := os.Stat(path)
		if err != nil {
			return false
		}
		m = fi.Mode().Perm()
	}
	if m&0o004 == 0 {
		return false
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if dir == "/" {
			return true
		}
	}
}

func (r fileResource) Read(context.Context, provider.Session, string) (provider.Values, bool, error) {
	return nil, false, errors.New("local_file is read through the state it keeps")
}

// ReadState reads the file state names; gone, or with content whose
// SHA-1 is not the id, it is made again.
func (r fileResource) ReadState(ctx context.Context, s provider.Session, id string, prior provider.Values) (provider.Values, bool, error) {
	type res struct {
		v  provider.Values
		ok bool
	}
	got, err := as(s, func() (res, error) {
		b, err := os.ReadFile(prior.String("filename"))
		if errors.Is(err, fs.ErrNotExist) {
			return res{}, nil
		}
		if err != nil {
			return res{}, err
		}
		sum := sha1.Sum(b)
		if hex.EncodeToString(sum[:]) != id {
			return res{}, nil
		}
		out := prior.Clone()
		switch {
		case prior.Has("content_base64"):
			out["content_base64"] = base64.StdEncoding.EncodeToString(b)
		case prior.Has("source"):
		case prior.Has("content") || r.sensitive:
			out["content"] = string(b)
		default:
			out["sensitive_content"] = string(b)
		}
		setHashes(out, b)
		return res{out, true}, nil
	})
	return got.v, got.ok, err
}

func (r fileResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	return as(s, func() (provider.Values, error) {
		b, ok, err := r.content(planned)
		if err != nil {
			return nil, err
		}
		if !ok {
			if b, err = os.ReadFile(planned.String("source")); err != nil {
				return nil, fmt.Errorf("source: %w", err)
			}
		}
		fp, err := parsePerm("file_permission", planned.String("file_permission"))
		if err != nil {
			return nil, err
		}
		dp, err := parsePerm("directory_permission", planned.String("directory_permission"))
		if err != nil {
			return nil, err
		}
		path := planned.String("filename")
		if err := os.MkdirAll(filepath.Dir(path), dp); err != nil {
			return nil, err
		}
		if err := writeAtomic(path, b, fp); err != nil {
			return nil, err
		}
		out := planned.Clone()
		setHashes(out, b)
		out["id"] = out["content_sha1"]
		return out, nil
	})
}

func (r fileResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	return nil, errors.New("every argument of a local file forces its replacement")
}

func (r fileResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	_, err := as(s, func() (struct{}, error) {
		err := os.Remove(prior.String("filename"))
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return struct{}{}, err
	})
	return err
}

// writeAtomic writes data to path through a temporary file of the same
// directory, with mode exactly perm (not reduced by a umask), synced and
// renamed over path.
func writeAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".cairn-write-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// fileData is data local_file, or data local_sensitive_file.
type fileData struct{ sensitive bool }

var (
	_ provider.DataSource = fileData{}
	_ provider.Private    = fileData{}
)

func (d fileData) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "Reads a file (hashicorp/local's data local_file); id is the SHA-1 of its content.",
		Attributes: hashes(map[string]*provider.Attribute{
			"filename":       {Type: provider.String, Required: true, Description: "Path to the file that will be read. The data source will return an error if the file does not exist."},
			"content":        {Type: provider.String, Computed: true, Sensitive: d.sensitive, Description: "Raw content of the file that was read, as UTF-8 encoded string. Files that do not contain UTF-8 text will have invalid UTF-8 sequences in content replaced with the Unicode replacement character."},
			"content_base64": {Type: provider.String, Computed: true, Sensitive: d.sensitive, Description: "Base64 encoded version of the file content (use this when dealing with binary data)."},
		}),
	}
}

func (d fileData) Read(ctx context.Context, s provider.Session, args provider.Values) (provider.Values, error) {
	return as(s, func() (provider.Values, error) {
		b, err := os.ReadFile(args.String("filename"))
		if err != nil {
			return nil, err
		}
		out := args.Clone()
		out["content"] = strings.ToValidUTF8(string(b), "\uFFFD")
		out["content_base64"] = base64.StdEncoding.EncodeToString(b)
		setHashes(out, b)
		return out, nil
	})
}
