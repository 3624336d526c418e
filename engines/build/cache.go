package build

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// cacheKey is Docker's rule: the parent image, the instruction (as
// expanded), the ARGs in effect and, for COPY and ADD, the content digest
// of the sources; and the build's epoch (SOURCE_DATE_EPOCH), which every
// time in a layer and config is set to.
func cacheKey(parent string, epoch int64, text string, args []arg, sources string) string {
	h := sha256.New()
	fmt.Fprintf(h, "parent %s\nepoch %d\ninstruction %s\n", parent, epoch, text)
	sorted := slices.Clone(args)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, a := range sorted {
		fmt.Fprintf(h, "arg %s=%s\n", a.name, a.value)
	}
	fmt.Fprintf(h, "sources %s\n", sources)
	return fmt.Sprintf("%x", h.Sum(nil))
}

func (b *builder) lookup(key string) (v1.Image, string, bool) {
	raw, err := os.ReadFile(filepath.Join(b.cache, key))
	if err != nil {
		return nil, "", false
	}
	h, err := v1.NewHash(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, "", false
	}
	img, err := b.store.BlobImage(h)
	if err != nil {
		return nil, "", false // pruned since
	}
	return img, h.String(), true
}

// store0 records a cache entry (best effort: a lost entry is a miss).
// The entry is written whole to a file of its own, then renamed, so two
// builds recording the same key at once each leave a whole entry.
func (b *builder) store0(key, digest string) {
	f, err := os.CreateTemp(b.cache, key+".tmp-*")
	if err != nil {
		return
	}
	_, err = f.WriteString(digest + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(b.cache, key))
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
}
