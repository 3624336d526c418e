package image_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/engines/runtime/image"
	"github.com/cairnhq/cairn/engines/runtime/image/imagetest"
)

// newStore opens a store in a fresh temporary directory and returns it with
// its layout directory.
func newStore(t *testing.T) (*image.Store, string) {
	t.Helper()
	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "layout")
	s, err := image.Open(layoutDir, filepath.Join(dir, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	return s, layoutDir
}

// importFile imports the archive at path into s.
func importFile(t *testing.T, s *image.Store, path, tag string) []image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imgs, err := s.Import(context.Background(), f, tag)
	if err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
	return imgs
}

// busyboxStore is a store holding the busybox fixture as busybox:latest.
func busyboxStore(t *testing.T) (*image.Store, string, image.Image) {
	t.Helper()
	s, layoutDir := newStore(t)
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	imagetest.BusyboxArchive(t, archive, "", nil)
	imgs := importFile(t, s, archive, "")
	if len(imgs) != 1 {
		t.Fatalf("imported %d images, want 1", len(imgs))
	}
	return s, layoutDir, imgs[0]
}

// requireTool skips the test when the tool is missing, or fails it with
// CI=true, where the tool must be installed.
func requireTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: install Debian's %s package", tool, pkg)
		}
		t.Skipf("%s is missing: install Debian's %s package to run this test", tool, pkg)
	}
}

// skopeoInspect runs `skopeo inspect` on ref and decodes its answer.
func skopeoInspect(t *testing.T, ref string) (out struct {
	Digest   string
	Layers   []string
	RepoTags []string
}) {
	t.Helper()
	requireTool(t, "skopeo", "skopeo")
	raw, err := exec.Command("skopeo", "inspect", ref).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, raw)
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, raw)
	}
	return out
}

func TestImportDockerArchive(t *testing.T) {
	s, _, img := busyboxStore(t)
	if !slices.Equal(img.Names, []string{"busybox:latest"}) || img.Layers != 2 || img.Size <= 0 ||
		!img.Created.Equal(imagetest.Created) || !strings.HasPrefix(img.ID, "sha256:") || !strings.HasPrefix(img.Digest, "sha256:") {
		t.Fatalf("imported %+v", img)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].ID != img.ID {
		t.Fatalf("List = %+v, %v", list, err)
	}
	for _, ref := range []string{"busybox", "busybox:latest", "docker.io/library/busybox", img.ID, img.ID[7:11], "sha256:" + img.ID[7:19]} {
		got, err := s.Resolve(ref)
		if err != nil || got.ID != img.ID {
			t.Errorf("Resolve(%q) = %+v, %v", ref, got, err)
		}
	}
	for _, ref := range []string{"nothere", "busybox:1", img.ID[7:10], "sha256:0000"} {
		_, err := s.Resolve(ref)
		if !errors.Is(err, image.ErrNotFound) || !strings.Contains(err.Error(), ref) {
			t.Errorf("Resolve(%q) error = %v, want not found naming it", ref, err)
		}
	}
}

func TestImportGzippedArchive(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	imagetest.BusyboxArchive(t, archive, "gz", nil)
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t)
	imgs, err := s.Import(context.Background(), &zipped, "")
	if err != nil || len(imgs) != 1 || !slices.Equal(imgs[0].Names, []string{"gz:latest"}) {
		t.Fatalf("import of a gzipped docker-archive = %+v, %v", imgs, err)
	}
}

func TestInspectAndHistory(t *testing.T) {
	s, _, img := busyboxStore(t)
	in, err := s.Inspect("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if in.Id != img.ID || !slices.Equal(in.RepoTags, []string{"busybox:latest"}) || in.Architecture != "amd64" || in.Os != "linux" ||
		!slices.Equal(in.Config.Cmd, []string{"sh"}) || !slices.Equal(in.Config.Env, []string{"PATH=/bin:/usr/bin"}) ||
		in.RootFS.Type != "layers" || len(in.RootFS.Layers) != 2 || in.Size != img.Size {
		t.Fatalf("Inspect = %+v", in)
	}
	h, err := s.History("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].ID != img.ID || h[1].ID != "<missing>" ||
		h[0].CreatedBy != "whiteouts and extra files" || h[1].CreatedBy != "busybox and applets" || h[1].Size <= h[0].Size {
		t.Fatalf("History = %+v", h)
	}
	cfg, err := s.Config(img.ID)
	if err != nil || cfg.Config.Cmd[0] != "sh" {
		t.Fatalf("Config = %+v, %v", cfg, err)
	}
}

func TestSkopeoReadsLayout(t *testing.T) {
	s, layoutDir, img := busyboxStore(t)
	if got := skopeoInspect(t, "oci:"+layoutDir+":busybox:latest"); got.Digest != img.Digest || len(got.Layers) != 2 {
		t.Fatalf("skopeo inspect = %+v, want digest %s", got, img.Digest)
	}
	if _, err := s.Tag("busybox", "registry.example:5000/team/bb:v1"); err != nil {
		t.Fatal(err)
	}
	if got := skopeoInspect(t, "oci:"+layoutDir+":registry.example:5000/team/bb:v1"); got.Digest != img.Digest {
		t.Fatalf("skopeo inspect of the new tag = %+v", got)
	}
}

func TestImportOCIArchive(t *testing.T) {
	requireTool(t, "skopeo", "skopeo")
	dir := t.TempDir()
	docker := filepath.Join(dir, "busybox.tar")
	oci := filepath.Join(dir, "busybox-oci.tar")
	imagetest.BusyboxArchive(t, docker, "", nil)
	if out, err := exec.Command("skopeo", "copy", "docker-archive:"+docker, "oci-archive:"+oci+":web/busybox:1.36").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	s, _ := newStore(t)
	imgs := importFile(t, s, oci, "")
	if len(imgs) != 1 || !slices.Equal(imgs[0].Names, []string{"web/busybox:1.36"}) || imgs[0].Layers != 2 {
		t.Fatalf("imported %+v", imgs)
	}
	// A tag names the image instead of the archive's name.
	imgs = importFile(t, s, oci, "other")
	if !slices.Equal(imgs[0].Names, []string{"other:latest", "web/busybox:1.36"}) {
		t.Fatalf("imported with a tag: %+v", imgs)
	}
	if os.Geteuid() == 0 { // unpacking makes devices for whiteouts
		if _, _, err := s.Unpack(context.Background(), "other"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestExportReimport(t *testing.T) {
	s, _, img := busyboxStore(t)
	if _, err := s.Tag("busybox", "bb:2"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, format := range []string{"oci-archive", "docker-archive"} {
		file := filepath.Join(dir, format+".tar")
		f, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Export(context.Background(), "busybox", f, format); err != nil {
			t.Fatalf("export %s: %v", format, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := skopeoInspect(t, format+":"+file); len(got.Layers) != 2 {
			t.Fatalf("skopeo inspect %s = %+v", format, got)
		}
		s2, _ := newStore(t)
		imgs := importFile(t, s2, file, "")
		if len(imgs) != 1 || imgs[0].ID != img.ID {
			t.Fatalf("re-import of %s = %+v, want id %s", format, imgs, img.ID)
		}
		want := []string{"bb:2", "busybox:latest"}
		if format == "oci-archive" {
			want = want[:1] // an oci-archive carries one name
		}
		if !slices.Equal(imgs[0].Names, want) {
			t.Errorf("re-import of %s names %v, want %v", format, imgs[0].Names, want)
		}
	}
	if err := s.Export(context.Background(), "busybox", &bytes.Buffer{}, "zip"); err == nil {
		t.Fatal("export to an unknown format succeeded")
	}
}

func TestTagMovesAndRemove(t *testing.T) {
	s, _, first := busyboxStore(t)
	if _, err := s.Tag("busybox", "Bad Name"); err == nil || !strings.Contains(err.Error(), "invalid image name") {
		t.Fatalf("Tag with an invalid name: %v", err)
	}
	tagged, err := s.Tag(first.ID[7:15], "bb")
	if err != nil || !slices.Equal(tagged.Names, []string{"bb:latest", "busybox:latest"}) {
		t.Fatalf("Tag = %+v, %v", tagged, err)
	}

	// Importing another image as busybox moves the name, as docker does.
	archive := filepath.Join(t.TempDir(), "second.tar")
	imagetest.BusyboxArchive(t, archive, "", map[string]string{"etc/second": "2\n"})
	second := importFile(t, s, archive, "")[0]
	if second.ID == first.ID {
		t.Fatal("the extra file did not change the image")
	}
	got, err := s.Resolve("busybox")
	if err != nil || got.ID != second.ID {
		t.Fatalf("busybox resolves to %+v, %v; want the second image", got, err)
	}
	got, err = s.Resolve(first.ID)
	if err != nil || !slices.Equal(got.Names, []string{"bb:latest"}) {
		t.Fatalf("first image after the move: %+v, %v", got, err)
	}

	// Tag bb onto the second image too: the first is left dangling.
	if _, err := s.Tag("busybox", "bb"); err != nil {
		t.Fatal(err)
	}
	got, err = s.Resolve(first.ID)
	if err != nil || len(got.Names) != 0 {
		t.Fatalf("dangling first image: %+v, %v", got, err)
	}

	removed, untagged, err := s.Remove("bb")
	if err != nil || !untagged || removed.ID != second.ID {
		t.Fatalf("Remove(bb) = %+v, %v, %v; want untagged only", removed, untagged, err)
	}
	removed, untagged, err = s.Remove("busybox")
	if err != nil || untagged || removed.ID != second.ID {
		t.Fatalf("Remove(busybox) = %+v, %v, %v; want the image removed", removed, untagged, err)
	}
	if _, err := s.Resolve(second.ID); !errors.Is(err, image.ErrNotFound) {
		t.Fatalf("removed image still resolves: %v", err)
	}
	if _, _, err := s.Remove(first.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Fatalf("List after removing all = %+v", list)
	}
	if _, _, err := s.Remove("busybox"); !errors.Is(err, image.ErrNotFound) {
		t.Fatalf("removing a missing image: %v", err)
	}
}

func TestRemoveByIDTakesAllNames(t *testing.T) {
	s, _, img := busyboxStore(t)
	if _, err := s.Tag("busybox", "a:1"); err != nil {
		t.Fatal(err)
	}
	removed, untagged, err := s.Remove(img.ID)
	if err != nil || untagged || !slices.Equal(removed.Names, []string{"a:1", "busybox:latest"}) {
		t.Fatalf("Remove(id) = %+v, %v, %v", removed, untagged, err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Fatalf("List = %+v", list)
	}
}

func TestPrune(t *testing.T) {
	requireRoot(t) // it unpacks
	s, layoutDir, img := busyboxStore(t)
	ctx := context.Background()
	_, diffIDs, err := s.Unpack(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Prune(nil)
	if err != nil || rep != (image.PruneReport{}) {
		t.Fatalf("Prune with everything in use = %+v, %v", rep, err)
	}
	if _, _, err := s.Remove(img.ID); err != nil {
		t.Fatal(err)
	}
	// A container still runs on the bottom layer.
	rep, err = s.Prune(map[string]bool{diffIDs[1]: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Blobs != 4 || rep.Layers != 1 || rep.BytesFreed <= 0 { // manifest, config, two layers
		t.Fatalf("Prune = %+v", rep)
	}
	if blobs, _ := os.ReadDir(filepath.Join(layoutDir, "blobs", "sha256")); len(blobs) != 0 {
		t.Fatalf("blobs left: %v", blobs)
	}
	layers, _ := os.ReadDir(filepath.Join(filepath.Dir(layoutDir), "layers"))
	if len(layers) != 1 || "sha256:"+layers[0].Name() != diffIDs[1] {
		t.Fatalf("unpacked layers left: %v, want only %s", layers, diffIDs[1])
	}
	rep, err = s.Prune(nil)
	if err != nil || rep.Layers != 1 {
		t.Fatalf("second Prune = %+v, %v", rep, err)
	}
}

// snapshot is the content of every file under dir, by path.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		data := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			data = string(b)
		}
		out[p] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// layerEntry returns the offset and size of the biggest entry of the
// archive data (the busybox layer), and its hex digest from its entry name.
func layerEntry(t *testing.T, data []byte) (offset, size int64, hex string) {
	t.Helper()
	r := bytes.NewReader(data)
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		if hdr.Size > size {
			offset, size = int64(len(data))-int64(r.Len()), hdr.Size
			hex = strings.TrimSuffix(filepath.Base(hdr.Name), ".tar.gz")
		}
	}
	if size == 0 {
		t.Fatal("no layer in the archive")
	}
	return offset, size, hex
}

func TestCorruptArchiveLeavesStoreUnchanged(t *testing.T) {
	s, layoutDir, _ := busyboxStore(t)
	before := snapshot(t, layoutDir)

	archive := filepath.Join(t.TempDir(), "other.tar")
	imagetest.BusyboxArchive(t, archive, "other", map[string]string{"etc/other": "x\n"})
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	offset, size, hex := layerEntry(t, data)
	flipped := slices.Clone(data)
	flipped[offset+size/2] ^= 0x40
	for name, corrupt := range map[string][]byte{
		"truncated":   data[:offset+size/2],
		"bit-flipped": flipped,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Import(context.Background(), bytes.NewReader(corrupt), "")
			t.Log(err)
			if err == nil {
				t.Fatal("import of a corrupt archive succeeded")
			}
			// The truncated archive is named by the entry's (blob) digest,
			// the flipped one by the layer's diff_id or digest.
			if !regexp.MustCompile(`layer sha256:[0-9a-f]{64}: `).MatchString(err.Error()) {
				t.Fatalf("error %q does not name the layer digest", err)
			}
			if name == "truncated" && !strings.Contains(err.Error(), "sha256:"+hex) {
				t.Fatalf("error %q does not name layer %s", err, hex)
			}
			after := snapshot(t, layoutDir)
			if len(after) != len(before) {
				t.Fatalf("store files changed: %d before, %d after", len(before), len(after))
			}
			for p, v := range before {
				if after[p] != v {
					t.Fatalf("%s changed", p)
				}
			}
		})
	}
	// The same for an oci-archive, whose blobs are named by digest.
	var oci bytes.Buffer
	if err := s.Export(context.Background(), "busybox", &oci, "oci-archive"); err != nil {
		t.Fatal(err)
	}
	offset, size, hex = layerEntry(t, oci.Bytes())
	flipped = slices.Clone(oci.Bytes())
	flipped[offset+size/2] ^= 0x40
	for name, corrupt := range map[string][]byte{
		"oci truncated":   oci.Bytes()[:offset+size/2],
		"oci bit-flipped": flipped,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Import(context.Background(), bytes.NewReader(corrupt), "other")
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), "layer sha256:"+hex+": ") {
				t.Fatalf("error %v does not name layer %s", err, hex)
			}
			if after := snapshot(t, layoutDir); len(after) != len(before) {
				t.Fatalf("store files changed: %d before, %d after", len(before), len(after))
			}
		})
	}
	if _, err := s.Import(context.Background(), strings.NewReader("not a tar at all"), ""); err == nil {
		t.Fatal("import of garbage succeeded")
	}
}

// TestConcurrentUse runs imports, tags, lists and removals together; run
// under -race it checks the store's locking.
func TestConcurrentUse(t *testing.T) {
	s, _, img := busyboxStore(t)
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	imagetest.BusyboxArchive(t, archive, "copy", nil)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Open(archive)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			if _, err := s.Import(context.Background(), f, ""); err != nil {
				errs <- err
			}
			name := "t" + strconv.Itoa(i)
			if _, err := s.Tag(img.ID, name); err != nil {
				errs <- err
			}
			if _, err := s.List(); err != nil {
				errs <- err
			}
			if _, _, err := s.Remove(name); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := s.Resolve(img.ID)
	if err != nil || !slices.Equal(got.Names, []string{"busybox:latest", "copy:latest"}) {
		t.Fatalf("after concurrent use: %+v, %v", got, err)
	}
}
