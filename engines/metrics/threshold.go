package metrics

import (
	"fmt"
	"strconv"
)

// Level is a Datadog metric monitor's state for one series: OK, WARN or
// ALERT (critical).
type Level int

// The levels, in order of gravity.
const (
	LevelOK Level = iota
	LevelWarning
	LevelCritical
)

// String names the level as the alert states do: inactive, warning,
// firing.
func (l Level) String() string {
	switch l {
	case LevelWarning:
		return "warning"
	case LevelCritical:
		return "firing"
	}
	return "inactive"
}

// Thresholds are a metric monitor's levels, with Datadog's semantics: with
// the default comparison (above), a value above Critical is critical and
// one above Warning a warning; a critical series recovers only once its
// value is below CriticalRecovery (when set, else once it is no longer
// above Critical), a warning one once below WarningRecovery. Below
// mirrors every comparison. A nil threshold is not set.
type Thresholds struct {
	Critical         float64
	Warning          *float64
	CriticalRecovery *float64
	WarningRecovery  *float64
	Below            bool
}

// beyond says whether v is on the alerting side of t: above it, or below
// it for a below monitor.
func (th Thresholds) beyond(v, t float64) bool {
	if th.Below {
		return v < t
	}
	return v > t
}

// notRecovered says whether v has not yet crossed the recovery threshold
// r back: it is not below it (not above it for a below monitor).
func (th Thresholds) notRecovered(v, r float64) bool {
	if th.Below {
		return v <= r
	}
	return v >= r
}

// Next is the level of a series at level cur whose value is now v.
func (th Thresholds) Next(cur Level, v float64) Level {
	if th.beyond(v, th.Critical) || (cur == LevelCritical && th.CriticalRecovery != nil && th.notRecovered(v, *th.CriticalRecovery)) {
		return LevelCritical
	}
	if th.Warning == nil {
		return LevelOK
	}
	// A series leaving critical passed the warning threshold on its way
	// up, so the warning's recovery holds it as it would a warning one.
	if th.beyond(v, *th.Warning) || (cur >= LevelWarning && th.WarningRecovery != nil && th.notRecovered(v, *th.WarningRecovery)) {
		return LevelWarning
	}
	return LevelOK
}

// Check refuses thresholds Datadog refuses: a warning not on the safe side
// of the critical threshold, a recovery threshold not on the safe side of
// its threshold, a warning recovery without a warning.
func (th Thresholds) Check() error {
	side, safe := "below", func(a, b float64) bool { return a < b }
	if th.Below {
		side, safe = "above", func(a, b float64) bool { return a > b }
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	if th.Warning != nil && !safe(*th.Warning, th.Critical) {
		return fmt.Errorf("warning=%s must be %s critical=%s", num(*th.Warning), side, num(th.Critical))
	}
	if th.CriticalRecovery != nil && !safe(*th.CriticalRecovery, th.Critical) {
		return fmt.Errorf("critical-recovery=%s must be %s critical=%s", num(*th.CriticalRecovery), side, num(th.Critical))
	}
	if th.WarningRecovery != nil {
		if th.Warning == nil {
			return fmt.Errorf("warning-recovery=%s needs warning=", num(*th.WarningRecovery))
		}
		if !safe(*th.WarningRecovery, *th.Warning) {
			return fmt.Errorf("warning-recovery=%s must be %s warning=%s", num(*th.WarningRecovery), side, num(*th.Warning))
		}
	}
	return nil
}

// threshold is the threshold whose crossing put a series at level l.
func (th Thresholds) threshold(l Level) float64 {
	if l == LevelWarning && th.Warning != nil {
		return *th.Warning
	}
	return th.Critical
}
