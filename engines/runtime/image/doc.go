// Package image keeps the runtime engine's container images in an OCI image
// layout and unpacks their layers for overlayfs.
//
// A Store is two directories: an OCI image layout (oci-layout, index.json,
// blobs/sha256/…) that skopeo and umoci read as it is, and a cache of
// unpacked layers, one directory per layer diff_id. Names are held as the
// org.opencontainers.image.ref.name annotation of index.json entries, one
// entry per name; an image whose last name moved to another image stays in
// the index as an unnamed ("dangling") entry, as docker keeps <none> images.
// Blobs and unpacked layers are only deleted by Prune.
package image
