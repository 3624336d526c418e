package build

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairnhq/cairn/engines/build/packer"
	"github.com/cairnhq/cairn/engines/runtime/image"
)

// postProcess runs each chain of post-processors over the artifact.
func (j *packerJob) postProcess(ctx context.Context, b *builder, pb packer.Builder, art artifact, buildID string, say func(string, ...any)) error {
	for _, chain := range pb.PostProcessors {
		a := art
		for _, pp := range chain {
			if !packer.Applies(pp.Only, pp.Except, pb.Name, pb.Type) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			b.n++
			start := time.Now()
			say("Running post-processor: %s", pp.Type)
			var err error
			a, err = j.postProcessor(ctx, b, pb, pp, a, buildID, say)
			if err != nil {
				return &StepError{Step: b.n, Instruction: "post-processor " + pp.Type, Tail: b.lastLines(), Err: err}
			}
			b.finishStep(nil, Step{N: b.n, Stage: pb.Name, Instruction: "post-processor " + pp.Type}, start)
		}
	}
	return nil
}

func (j *packerJob) postProcessor(ctx context.Context, b *builder, pb packer.Builder, pp packer.PostProcessor, a artifact, buildID string, say func(string, ...any)) (artifact, error) {
	switch pp.Type {
	case "docker-tag":
		if !strings.HasPrefix(a.id, "sha256:") {
			return a, errors.New("docker-tag needs an image: give the builder commit = true")
		}
		tags := pp.Tags
		if len(tags) == 0 {
			tags = []string{"latest"}
		}
		for _, t := range tags {
			name, err := image.NormalizeName(pp.Repository + ":" + t)
			if err != nil {
				return a, fmt.Errorf("docker-tag: %w", err)
			}
			im, err := j.m.store.Tag(a.id, name)
			if err != nil {
				return a, err
			}
			if err := j.m.tags.RecordTag(ctx, j.actor, im.ID, name, buildID); err != nil {
				return a, err
			}
			say("Tagged %s as %s", a.id, name)
		}
		return a, nil
	case "manifest":
		out := pp.Output
		if out == "" {
			out = "packer-manifest.json"
		}
		return a, j.writeManifest(j.abs(out), pb, pp, a)
	case "checksum":
		types := pp.ChecksumTypes
		if len(types) == 0 {
			types = []string{"md5"}
		}
		tmpl := pp.Output
		if tmpl == "" {
			tmpl = "packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum"
		}
		var files []string
		for _, ct := range types {
			out, err := packer.Render(tmpl, map[string]string{"BuildName": pb.Name, "BuilderType": pb.Type, "ChecksumType": ct})
			if err != nil {
				return a, fmt.Errorf("output: %w", err)
			}
			out = j.abs(out)
			var text strings.Builder
			for _, f := range a.files {
				sum, err := j.checksum(ct, f)
				if err != nil {
					return a, err
				}
				fmt.Fprintf(&text, "%x\t%s\n", sum, filepath.Base(f))
			}
			if len(a.files) == 0 {
				say("warning: the artifact has no files (give the builder export_path) — %s is empty", out)
			}
			if err := j.asCaller(func() error { return os.WriteFile(out, []byte(text.String()), 0o644) }); err != nil {
				return a, err
			}
			files = append(files, out)
		}
		return artifact{id: a.id, files: append(a.files, files...)}, nil
	case "compress":
		out := pp.Output
		if out == "" {
			out = "packer_{{.BuildName}}_{{.BuilderType}}.tar.gz"
		}
		o, err := packer.Render(out, map[string]string{"BuildName": pb.Name, "BuilderType": pb.Type})
		if err != nil {
			return a, fmt.Errorf("output: %w", err)
		}
		o = j.abs(o)
		if len(a.files) == 0 {
			return a, errors.New("compress: the artifact has no files (give the builder export_path)")
		}
		if err := j.asCaller(func() error { return compress(o, a.files) }); err != nil {
			return a, err
		}
		return artifact{id: o, files: []string{o}}, nil
	case "shell-local":
		return a, j.local(ctx, b, pb, pp.Inline, pp.Command, "", nil, nil)
	}
	return a, fmt.Errorf("post-processor %s is not available here", pp.Type)
}

func (j *packerJob) checksum(kind, file string) ([]byte, error) {
	var h hash.Hash
	switch kind {
	case "md5":
		h = md5.New()
	case "sha1":
		h = sha1.New()
	case "sha224":
		h = sha256.New224()
	case "sha256":
		h = sha256.New()
	case "sha384":
		h = sha512.New384()
	default:
		h = sha512.New()
	}
	err := j.asCaller(func() error {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(h, f)
		return err
	})
	return h.Sum(nil), err
}

// compress writes files into out: a tar.gz (or .tgz) of them all, or a
// .gz of the one file.
func compress(out string, files []string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	switch {
	case strings.HasSuffix(out, ".tar.gz") || strings.HasSuffix(out, ".tgz"):
		tw := tar.NewWriter(gz)
		for _, p := range files {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			hdr, _ := tar.FileInfoHeader(fi, "")
			hdr.Name = filepath.Base(p)
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, in)
			in.Close()
			if err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
	case strings.HasSuffix(out, ".gz") && len(files) == 1:
		in, err := os.Open(files[0])
		if err != nil {
			return err
		}
		defer in.Close()
		if _, err := io.Copy(gz, in); err != nil {
			return err
		}
	default:
		return fmt.Errorf("compress: output %s: cairn writes .tar.gz, .tgz, or .gz of one file", out)
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Sync()
}

// manifest is Packer's packer-manifest.json.
type manifest struct {
	Builds      []manifestBuild `json:"builds"`
	LastRunUUID string          `json:"last_run_uuid"`
}

type manifestBuild struct {
	Name          string            `json:"name"`
	BuilderType   string            `json:"builder_type"`
	BuildTime     int64             `json:"build_time"`
	Files         []manifestFile    `json:"files"`
	ArtifactID    string            `json:"artifact_id"`
	PackerRunUUID string            `json:"packer_run_uuid"`
	CustomData    map[string]string `json:"custom_data"`
}

type manifestFile struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// writeManifest appends the build to the manifest file, as Packer does.
func (j *packerJob) writeManifest(out string, pb packer.Builder, pp packer.PostProcessor, a artifact) error {
	j.fileMu.Lock()
	defer j.fileMu.Unlock()
	return j.asCaller(func() error {
		var mf manifest
		if raw, err := os.ReadFile(out); err == nil {
			if err := json.Unmarshal(raw, &mf); err != nil {
				return fmt.Errorf("manifest %s: %w", out, err)
			}
		}
		mb := manifestBuild{Name: pb.Name, BuilderType: pb.Type, BuildTime: time.Now().Unix(), ArtifactID: a.id, PackerRunUUID: j.runUUID}
		if i := strings.LastIndex(pb.Name, "."); i >= 0 && strings.HasPrefix(pb.Name, pb.Type+".") {
			mb.Name = pb.Name[i+1:]
		}
		for _, f := range a.files {
			fi, err := os.Stat(f)
			if err != nil {
				return err
			}
			name := f
			if pp.StripPath {
				name = filepath.Base(f)
			}
			mb.Files = append(mb.Files, manifestFile{Name: name, Size: fi.Size()})
		}
		mf.Builds = append(mf.Builds, mb)
		mf.LastRunUUID = j.runUUID
		raw, err := json.MarshalIndent(mf, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(out, append(raw, '\n'), 0o644)
	})
}
