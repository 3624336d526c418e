package image

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// refNameAnnotation is the OCI annotation that names an index.json entry.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// containerdNameAnnotation is the annotation containerd's exports carry the
// full image name in; it is preferred over refNameAnnotation on import
// because the OCI one often holds only the tag.
const containerdNameAnnotation = "io.containerd.image.name"

// pathComponent is one "/"-separated component of a repository path, as
// docker's reference grammar has it: lowercase alphanumerics joined by
// ".", "_", "__" or dashes. go-containerregistry's name package checks only
// the character set, so "-x" would pass it.
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// NormalizeName returns the name under which the store keeps ref, docker
// style: a missing tag becomes ":latest", and docker.io's implicit parts are
// dropped ("docker.io/library/busybox" → "busybox:latest"). Digest references
// and invalid names are refused: a name in the store is always a tag.
func NormalizeName(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("invalid image name %q: empty", ref)
	}
	if strings.Contains(ref, "@") {
		return "", fmt.Errorf("invalid image name %q: a digest reference cannot name an image, use repository[:tag]", ref)
	}
	tag, err := name.NewTag(ref, name.WithDefaultTag("latest"))
	if err != nil {
		return "", fmt.Errorf("invalid image name %q: %w", ref, err)
	}
	repo := tag.RepositoryStr()
	for _, c := range strings.Split(repo, "/") {
		if !pathComponent.MatchString(c) {
			return "", fmt.Errorf("invalid image name %q: path component %q must be lowercase letters and digits joined by '.', '_', '__' or '-'", ref, c)
		}
	}
	if reg := tag.RegistryStr(); reg != name.DefaultRegistry {
		return reg + "/" + repo + ":" + tag.TagStr(), nil
	}
	repo = strings.TrimPrefix(repo, "library/")
	return repo + ":" + tag.TagStr(), nil
}
