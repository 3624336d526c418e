// Package timeprovider is hashicorp/time under Terraform's schemas:
// time_static (a timestamp kept in state), time_sleep (a wait on create
// and destroy) and time_rotating (a timestamp made again once its
// rotation is due).
package timeprovider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

func init() { provider.Register(New()) }

// New returns the time provider.
func New() *provider.Stateless {
	return &provider.Stateless{ProviderName: "time", ProviderSource: "hashicorp/time",
		Types: map[string]provider.Resource{
			"time_static":   staticResource{},
			"time_sleep":    sleepResource{},
			"time_rotating": rotatingResource{},
			"time_offset":   offsetResource{},
		}}
}

// now is the clock; a variable so the rotation test can move it.
var now = time.Now

var triggers = &provider.Attribute{Type: provider.StringMap, Optional: true, ForceNew: true,
	Description: "Arbitrary map of values that, when changed, will trigger a new base timestamp value to be saved."}

// parts are the computed parts of a timestamp every type answers.
func parts(attrs map[string]*provider.Attribute) map[string]*provider.Attribute {
	for _, n := range []string{"day", "hour", "minute", "month", "second", "unix", "year"} {
		attrs[n] = &provider.Attribute{Type: provider.Number, Computed: true, Description: "Number " + n + " of the timestamp."}
	}
	return attrs
}

func setParts(v provider.Values, t time.Time) {
	t = t.UTC()
	v["rfc3339"] = t.Format(time.RFC3339)
	v["day"], v["hour"], v["minute"] = int64(t.Day()), int64(t.Hour()), int64(t.Minute())
	v["month"], v["second"], v["year"] = int64(t.Month()), int64(t.Second()), int64(t.Year())
	v["unix"] = t.Unix()
}

// base is the timestamp of a new object: rfc3339 when given, else now.
func base(v provider.Values) (time.Time, error) {
	if v.Has("rfc3339") {
		t, err := time.Parse(time.RFC3339, v.String("rfc3339"))
		if err != nil {
			return time.Time{}, fmt.Errorf("rfc3339: %w", err)
		}
		return t, nil
	}
	return now().Truncate(time.Second), nil
}

type stateOnly struct{}

func (stateOnly) Read(context.Context, provider.Session, string) (provider.Values, bool, error) {
	return nil, false, errors.New("time objects live in state only")
}

func (stateOnly) ReadState(ctx context.Context, s provider.Session, id string, prior provider.Values) (provider.Values, bool, error) {
	return prior, true, nil
}

func (stateOnly) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	out := prior.Clone()
	for k, v := range planned {
		out[k] = v
	}
	return out, nil
}

func (stateOnly) Delete(context.Context, provider.Session, string, provider.Values) error { return nil }

// id is the rfc3339 timestamp when given, else made on create.
func id(v provider.Values) (string, error) {
	if v.Has("rfc3339") {
		t, err := time.Parse(time.RFC3339, v.String("rfc3339"))
		if err != nil {
			return "", fmt.Errorf("rfc3339: %w", err)
		}
		return t.UTC().Format(time.RFC3339), nil
	}
	return "", nil
}

type staticResource struct{ stateOnly }

var _ provider.StateBacked = staticResource{}

func (staticResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A timestamp kept in state (hashicorp/time's time_static); id is its RFC 3339 form.",
		Attributes: parts(map[string]*provider.Attribute{
			"rfc3339":  {Type: provider.String, Optional: true, Computed: true, ForceNew: true, Description: "Base timestamp in RFC3339 format (see RFC3339 time string e.g., YYYY-MM-DDTHH:MM:SSZ). Defaults to the current time."},
			"triggers": triggers,
		}),
	}
}

func (staticResource) ID(v provider.Values) (string, error) { return id(v) }

func (staticResource) Validate(v provider.Values, known map[string]bool) error {
	_, err := id(v)
	return err
}

func (staticResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	t, err := base(planned)
	if err != nil {
		return nil, err
	}
	out := planned.Clone()
	setParts(out, t)
	out["id"] = out["rfc3339"]
	return out, nil
}

type sleepResource struct{ stateOnly }

var _ provider.StateBacked = sleepResource{}

func (sleepResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A wait on create and on destroy (hashicorp/time's time_sleep); id is when it was made, RFC 3339.",
		Attributes: map[string]*provider.Attribute{
			"create_duration":  {Type: provider.String, Optional: true, Description: "Time duration to delay resource creation. For example, 30s for 30 seconds or 5m for 5 minutes. Updating this value by itself will not trigger a delay."},
			"destroy_duration": {Type: provider.String, Optional: true, Description: "Time duration to delay resource destroy. For example, 30s for 30 seconds or 5m for 5 minutes. Updating this value by itself will not trigger a delay. This value or any updates to it must be successfully applied into the Terraform state before destroying this resource to take effect."},
			"triggers":         {Type: provider.StringMap, Optional: true, ForceNew: true, Description: "Arbitrary map of values that, when changed, will run any creation or destroy delays again."},
		},
	}
}

func (sleepResource) ID(provider.Values) (string, error) { return "", nil }

func (sleepResource) Validate(v provider.Values, known map[string]bool) error {
	if !v.Has("create_duration") && !v.Has("destroy_duration") && !known["create_duration"] && !known["destroy_duration"] {
		return errors.New("one of create_duration, destroy_duration must be specified")
	}
	for _, n := range []string{"create_duration", "destroy_duration"} {
		if v.Has(n) {
			if d, err := time.ParseDuration(v.String(n)); err != nil || d < 0 {
				return fmt.Errorf("%s: %q is not a duration such as 30s or 5m", n, v.String(n))
			}
		}
	}
	return nil
}

func wait(ctx context.Context, d string) error {
	if d == "" {
		return nil
	}
	dur, err := time.ParseDuration(d)
	if err != nil {
		return err
	}
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (sleepResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	if err := wait(ctx, planned.String("create_duration")); err != nil {
		return nil, err
	}
	out := planned.Clone()
	out["id"] = now().UTC().Format(time.RFC3339)
	return out, nil
}

func (sleepResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	return wait(ctx, prior.String("destroy_duration"))
}

type rotatingResource struct{ stateOnly }

var _ provider.StateBacked = rotatingResource{}

var rotations = []string{"rotation_days", "rotation_hours", "rotation_minutes", "rotation_months", "rotation_years"}

func (rotatingResource) Schema() *provider.Schema {
	attrs := parts(map[string]*provider.Attribute{
		"rfc3339":          {Type: provider.String, Optional: true, Computed: true, ForceNew: true, Description: "Base timestamp in RFC3339 format (see RFC3339 time string e.g., YYYY-MM-DDTHH:MM:SSZ). Defaults to the current time."},
		"rotation_rfc3339": {Type: provider.String, Optional: true, Computed: true, ForceNew: true, Description: "Configure the rotation timestamp with an RFC3339 format of the offset timestamp. When the current time has passed the rotation timestamp, the resource will trigger recreation."},
		"triggers":         triggers,
	})
	for _, n := range rotations {
		attrs[n] = &provider.Attribute{Type: provider.Number, Optional: true, ForceNew: true, Description: "Number of " + n[len("rotation_"):] + " to add to the base timestamp to configure the rotation timestamp."}
	}
	return &provider.Schema{Description: "A timestamp made again once its rotation is due (hashicorp/time's time_rotating).", Attributes: attrs}
}

func (rotatingResource) ID(v provider.Values) (string, error) { return id(v) }

func (rotatingResource) Validate(v provider.Values, known map[string]bool) error {
	n := 0
	for _, r := range append(rotations, "rotation_rfc3339") {
		if v.Has(r) || known[r] {
			n++
		}
	}
	if n == 0 {
		return errors.New("one of rotation_days, rotation_hours, rotation_minutes, rotation_months, rotation_rfc3339, rotation_years must be specified")
	}
	_, err := id(v)
	return err
}

func (rotatingResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	t, err := base(planned)
	if err != nil {
		return nil, err
	}
	out := planned.Clone()
	setParts(out, t)
	out["id"] = out["rfc3339"]
	var rot time.Time
	switch {
	case planned.Has("rotation_rfc3339"):
		if rot, err = time.Parse(time.RFC3339, planned.String("rotation_rfc3339")); err != nil {
			return nil, fmt.Errorf("rotation_rfc3339: %w", err)
		}
	default:
		rot = t.AddDate(int(planned.Int("rotation_years")), int(planned.Int("rotation_months")), int(planned.Int("rotation_days"))).
			Add(time.Duration(planned.Int("rotation_hours"))*time.Hour + time.Duration(planned.Int("rotation_minutes"))*time.Minute)
	}
	out["rotation_rfc3339"] = rot.UTC().Format(time.RFC3339)
	return out, nil
}

// ReadState answers found=false once the rotation is due: the next plan
// makes it again, as the provider removes it from state.
func (rotatingResource) ReadState(ctx context.Context, s provider.Session, id string, prior provider.Values) (provider.Values, bool, error) {
	rot, err := time.Parse(time.RFC3339, prior.String("rotation_rfc3339"))
	if err != nil {
		return nil, false, fmt.Errorf("rotation_rfc3339 in state: %w", err)
	}
	if !now().Before(rot) {
		return nil, false, nil
	}
	return prior, true, nil
}

type offsetResource struct{ stateOnly }

var _ provider.StateBacked = offsetResource{}

var offsets = []string{"offset_days", "offset_hours", "offset_minutes", "offset_months", "offset_seconds", "offset_years"}

func (offsetResource) Schema() *provider.Schema {
	attrs := parts(map[string]*provider.Attribute{
		"base_rfc3339": {Type: provider.String, Optional: true, Computed: true, ForceNew: true, Description: "Base timestamp in RFC3339 format (see RFC3339 time string e.g., YYYY-MM-DDTHH:MM:SSZ). Defaults to the current time."},
		"rfc3339":      {Type: provider.String, Computed: true, Description: "RFC3339 format of the offset timestamp, e.g. 2020-02-12T06:36:13Z."},
		"triggers":     triggers,
	})
	for _, n := range offsets {
		attrs[n] = &provider.Attribute{Type: provider.Number, Optional: true, ForceNew: true, Description: "Number of " + n[len("offset_"):] + " to offset the base timestamp. At least one of the 'offset_' arguments must be configured."}
	}
	return &provider.Schema{Description: "A timestamp offset from a base (hashicorp/time's time_offset); id is the base, RFC 3339.", Attributes: attrs}
}

func (offsetResource) ID(v provider.Values) (string, error) {
	if v.Has("base_rfc3339") {
		return id(provider.Values{"rfc3339": v["base_rfc3339"]})
	}
	return "", nil
}

func (offsetResource) Validate(v provider.Values, known map[string]bool) error {
	for _, o := range offsets {
		if v.Has(o) || known[o] {
			return nil
		}
	}
	return errors.New("at least one of offset_days, offset_hours, offset_minutes, offset_months, offset_seconds, offset_years must be specified")
}

func (offsetResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	b, err := base(provider.Values{"rfc3339": planned["base_rfc3339"]})
	if err != nil {
		return nil, err
	}
	t := b.AddDate(int(planned.Int("offset_years")), int(planned.Int("offset_months")), int(planned.Int("offset_days"))).
		Add(time.Duration(planned.Int("offset_hours"))*time.Hour + time.Duration(planned.Int("offset_minutes"))*time.Minute + time.Duration(planned.Int("offset_seconds"))*time.Second)
	out := planned.Clone()
	setParts(out, t)
	out["base_rfc3339"] = b.UTC().Format(time.RFC3339)
	out["id"] = out["base_rfc3339"]
	return out, nil
}
