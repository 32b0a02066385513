package connection

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Trigger is why a run started.
type Trigger string

// The triggers of a run.
const (
	Scheduled Trigger = "scheduled"
	ManualRun Trigger = "manual"
	Retry     Trigger = "retry"
)

// Valid reports whether t is one of the triggers.
func (t Trigger) Valid() bool { return t == Scheduled || t == ManualRun || t == Retry }

// Outcome is how a run ended; empty while it runs.
type Outcome string

// The outcomes of a run.
const (
	Running     Outcome = ""
	Succeeded   Outcome = "succeeded"
	Failed      Outcome = "failed"
	Interrupted Outcome = "interrupted" // its node stopped or died; the run resumes from the committed state
	Cancelled   Outcome = "cancelled"
)

// Bounds of what a run keeps of its log.
const (
	MaxLogLines   = 50
	MaxLogLineLen = 500
)

// Run is one execution of a connection, as its history shows it.
type Run struct {
	ID           string
	ConnectionID string
	Trigger      Trigger
	// Attempt counts the job engine's tries of this run, from 1.
	Attempt   int
	StartedAt time.Time
	EndedAt   time.Time // zero while running
	// DueAt is the due time a scheduled run fulfils; zero for other runs.
	DueAt   time.Time
	Outcome Outcome
	// Error is the run's error, if it failed; never a secret.
	Error   string
	Streams []StreamStats
	// Log is the run's last log lines, oldest first, at most MaxLogLines.
	Log []string
}

// StreamStats is what a run did to one stream.
type StreamStats struct {
	Stream    string
	Records   int64
	Pages     int64
	Requests  int64
	Deletions int64
	Error     string
	// Created, Updated, Unchanged and Rejected count the rows a
	// destination connection's run loaded into Outreach (its stream is the
	// type it writes); zero for source runs.
	Created, Updated, Unchanged, Rejected int64
}

// Stream returns the stats of stream, adding an entry when missing.
func (r *Run) Stream(name string) *StreamStats {
	for i := range r.Streams {
		if r.Streams[i].Stream == name {
			return &r.Streams[i]
		}
	}
	r.Streams = append(r.Streams, StreamStats{Stream: name})
	return &r.Streams[len(r.Streams)-1]
}

// Totals sums the stats of every stream (Stream and Error left empty).
func (r *Run) Totals() StreamStats {
	var t StreamStats
	for _, s := range r.Streams {
		t.Records += s.Records
		t.Pages += s.Pages
		t.Requests += s.Requests
		t.Deletions += s.Deletions
		t.Created += s.Created
		t.Updated += s.Updated
		t.Unchanged += s.Unchanged
		t.Rejected += s.Rejected
	}
	return t
}

// AddLog appends a log line, keeping the last MaxLogLines, each cut to
// MaxLogLineLen bytes (on a character boundary).
func (r *Run) AddLog(line string) {
	line = strings.TrimRight(line, "\n")
	if len(line) > MaxLogLineLen {
		cut := MaxLogLineLen
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		line = line[:cut] + "…"
	}
	if len(r.Log) >= MaxLogLines {
		n := copy(r.Log, r.Log[len(r.Log)-MaxLogLines+1:])
		r.Log = r.Log[:n]
	}
	r.Log = append(r.Log, line)
}

// Finish ends the run at t with outcome; err (may be nil) becomes Error.
func (r *Run) Finish(t time.Time, outcome Outcome, err error) {
	r.EndedAt = t
	r.Outcome = outcome
	if err != nil {
		r.Error = err.Error()
	}
}
