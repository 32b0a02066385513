package connection

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Interval bounds: a schedule runs at most once a minute and at least once
// a month.
const (
	MinInterval = time.Minute
	MaxInterval = 31 * 24 * time.Hour
)

// ScheduleKind tells the three kinds of schedule apart.
type ScheduleKind string

// The kinds of schedule.
const (
	Manual   ScheduleKind = "manual"
	Interval ScheduleKind = "every"
	Cron     ScheduleKind = "cron"
)

// cronParser reads the one cron grammar accepted: five fields, no seconds, no
// descriptors (@daily) and no time zone prefix. Expressions are read in UTC.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Schedule says when a connection runs on its own: never (manual), every
// fixed interval, or at the times a five-field cron expression names (UTC).
// The zero Schedule is manual. Its text form, from String and accepted by
// ParseSchedule, is "manual", "every 15m" or "cron 0 */6 * * *".
type Schedule struct {
	kind  ScheduleKind
	every time.Duration
	expr  string
	cron  cron.Schedule
}

// Every returns an interval schedule; it fails outside [MinInterval,
// MaxInterval] or for a fraction of a second.
func Every(d time.Duration) (Schedule, error) {
	switch {
	case d < MinInterval:
		return Schedule{}, fieldError(FieldSchedule, "interval %s is too short; the shortest is %s", fmtDuration(d), fmtDuration(MinInterval))
	case d > MaxInterval:
		return Schedule{}, fieldError(FieldSchedule, "interval %s is too long; the longest is %s", fmtDuration(d), fmtDuration(MaxInterval))
	case d%time.Second != 0:
		return Schedule{}, fieldError(FieldSchedule, "interval %s has a fraction of a second; use whole seconds", d)
	}
	return Schedule{kind: Interval, every: d}, nil
}

// CronSchedule returns a schedule from a five-field cron expression
// (minute hour day-of-month month day-of-week), evaluated in UTC.
func CronSchedule(expr string) (Schedule, error) {
	expr = strings.Join(strings.Fields(expr), " ")
	if n := len(strings.Fields(expr)); n != 5 {
		return Schedule{}, fieldError(FieldSchedule, "cron expression %q has %d fields; want 5: minute hour day-of-month month day-of-week (UTC), e.g. \"*/15 * * * *\"", expr, n)
	}
	c, err := cronParser.Parse(expr)
	if err != nil {
		return Schedule{}, fieldError(FieldSchedule, "cron expression %q: %v", expr, err)
	}
	// An expression such as "0 0 30 2 *" (30 February) parses but never
	// fires; the parser gives up after five years, which covers a leap day.
	if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return Schedule{}, fieldError(FieldSchedule, "cron expression %q never fires", expr)
	}
	return Schedule{kind: Cron, expr: expr, cron: c}, nil
}

// ParseSchedule reads a schedule: "manual" (or empty), "every 15m" or a
// bare duration "15m", "cron */15 * * * *" or a bare five-field
// expression.
func ParseSchedule(s string) (Schedule, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || strings.EqualFold(s, string(Manual)):
		return Schedule{}, nil
	case strings.HasPrefix(s, "every "):
		return parseEvery(strings.TrimSpace(strings.TrimPrefix(s, "every ")))
	case strings.HasPrefix(s, "cron "):
		return CronSchedule(strings.TrimPrefix(s, "cron "))
	case len(strings.Fields(s)) == 1:
		return parseEvery(s)
	default:
		return CronSchedule(s)
	}
}

func parseEvery(s string) (Schedule, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return Schedule{}, fieldError(FieldSchedule, "%q is not an interval such as 15m or 1h30m, a five-field cron expression, or manual", s)
	}
	return Every(d)
}

// Kind is the schedule's kind.
func (s Schedule) Kind() ScheduleKind {
	if s.kind == "" {
		return Manual
	}
	return s.kind
}

// IsManual reports whether the connection runs only when asked.
func (s Schedule) IsManual() bool { return s.Kind() == Manual }

// Interval is the interval of an interval schedule, else 0.
func (s Schedule) Interval() time.Duration { return s.every }

// Expr is the expression of a cron schedule, else "".
func (s Schedule) Expr() string { return s.expr }

// String is the schedule's text form, which ParseSchedule reads back.
func (s Schedule) String() string {
	switch s.Kind() {
	case Interval:
		return "every " + fmtDuration(s.every)
	case Cron:
		return "cron " + s.expr
	}
	return string(Manual)
}

// MarshalText implements encoding.TextMarshaler.
func (s Schedule) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Schedule) UnmarshalText(b []byte) error {
	v, err := ParseSchedule(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// First is when a newly scheduled (or resumed) connection is first due:
// at once for an interval, the next matching minute for cron, never
// (zero) for manual.
func (s Schedule) First(now time.Time) time.Time {
	switch s.Kind() {
	case Interval:
		return now
	case Cron:
		return s.cron.Next(now.UTC())
	}
	return time.Time{}
}

// Next is the due time that follows the run due at last, once that run
// has been queued at now. It stays on the schedule's grid (last + k
// intervals, or the cron times) and is always after now: due times missed
// while nothing ran (every node down) collapse into the one run that was
// just queued rather than queueing one run each. Zero for manual.
func (s Schedule) Next(last, now time.Time) time.Time {
	switch s.Kind() {
	case Interval:
		next := last.Add(s.every)
		if !next.After(now) {
			k := now.Sub(last) / s.every
			next = last.Add((k + 1) * s.every)
		}
		return next
	case Cron:
		next := s.cron.Next(last.UTC())
		if !next.After(now) {
			next = s.cron.Next(now.UTC())
		}
		return next
	}
	return time.Time{}
}

// fmtDuration prints 15m rather than 15m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
