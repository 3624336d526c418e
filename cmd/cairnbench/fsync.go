package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// runFsync measures what bounds every synced write: one 4 KiB write plus
// fdatasync on the data directory's filesystem, 100 times.
func runFsync(ctx context.Context, b *bench) error {
	path := filepath.Join(b.tmp, "fsync.probe")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, 4096)
	var lat []float64
	for i := range 100 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		buf[0] = byte(i)
		start := time.Now()
		// Appending, as a WAL does: the file grows, so its size is metadata
		// fdatasync must write too, as pebble's WAL (without recycling) has.
		if _, err := f.WriteAt(buf, int64(i)*4096); err != nil {
			return err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("fdatasync: %w", err)
		}
		lat = append(lat, time.Since(start).Seconds())
	}
	b.add("fsync: 4 KiB append + fdatasync (bounds all below)", "",
		fmt.Sprintf("p50 %s, p99 %s (100 calls)", ms(median(lat)), ms(percentile(lat, 99))), nil)
	return nil
}
