package timeprovider

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// A time_rotating is found until its rotation is due, then gone (so the
// next plan makes it again).
func TestRotatingGoesWhenDue(t *testing.T) {
	t0 := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	now = func() time.Time { return t0 }
	defer func() { now = time.Now }()
	ctx := context.Background()
	got, err := rotatingResource{}.Create(ctx, provider.NoSession{}, provider.Values{"rotation_days": int64(30)})
	if err != nil {
		t.Fatal(err)
	}
	if got.String("rotation_rfc3339") != "2026-03-02T12:00:00Z" || got.String("id") != "2026-01-31T12:00:00Z" || got.Int("month") != 1 {
		t.Fatalf("%v", got)
	}
	now = func() time.Time { return t0.Add(29 * 24 * time.Hour) }
	if _, found, err := (rotatingResource{}).ReadState(ctx, provider.NoSession{}, got.String("id"), got); !found || err != nil {
		t.Fatalf("before the rotation: found %v, %v", found, err)
	}
	now = func() time.Time { return t0.Add(30 * 24 * time.Hour) }
	if _, found, err := (rotatingResource{}).ReadState(ctx, provider.NoSession{}, got.String("id"), got); found || err != nil {
		t.Fatalf("at the rotation: found %v, %v", found, err)
	}
}

func TestStaticKeepsAGivenTimestamp(t *testing.T) {
	v := provider.Values{"rfc3339": "2020-02-29T10:11:12+01:00"}
	id, err := staticResource{}.ID(v)
	if err != nil || id != "2020-02-29T09:11:12Z" {
		t.Fatalf("id %q %v", id, err)
	}
	got, err := staticResource{}.Create(context.Background(), provider.NoSession{}, v)
	if err != nil || got.Int("unix") != 1582967472 || got.Int("hour") != 9 {
		t.Fatalf("%v %v", got, err)
	}
	if err := (sleepResource{}).Validate(provider.Values{"create_duration": "soon"}, nil); err == nil {
		t.Fatal("a bad duration was accepted")
	}
}

func TestOffset(t *testing.T) {
	got, err := offsetResource{}.Create(context.Background(), provider.NoSession{}, provider.Values{"base_rfc3339": "2020-01-31T00:00:00Z", "offset_months": int64(1), "offset_hours": int64(25)})
	if err != nil || got.String("rfc3339") != "2020-03-03T01:00:00Z" || got.String("id") != "2020-01-31T00:00:00Z" || got.Int("day") != 3 {
		t.Fatalf("%v %v", got, err)
	}
	if err := (offsetResource{}).Validate(provider.Values{}, nil); err == nil {
		t.Fatal("no offset accepted")
	}
}
