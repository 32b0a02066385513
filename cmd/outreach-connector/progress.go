package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// liveProgress draws, on a terminal, a bar per running stream (records of
// the total Outreach counted, percentage, rate and ETA; a spinner when
// the total is unknown) above a line for the whole run. A stream's bar
// goes away when it ends; the summary follows the run. Off a terminal the
// structured logs tell the same.
//
// Lock order: mu guards the map only and is never held while calling mpb,
// and the decorators read atomics, never mu (mpb runs them on its own
// goroutine while AddBar waits for it).
type liveProgress struct {
	p       *mpb.Progress
	overall *mpb.Bar
	records atomic.Int64 // records of every stream so far

	mu   sync.Mutex
	bars map[string]*streamBar
}

// streamBar is one stream's bar and what its decorators read.
type streamBar struct {
	bar     *mpb.Bar
	began   time.Time // set before the bar exists
	total   atomic.Int64
	records atomic.Int64
	pages   atomic.Int64
}

// rate is records a second since the stream began.
func (sb *streamBar) rate() float64 {
	return float64(sb.records.Load()) / max(time.Since(sb.began).Seconds(), 0.001)
}

// eta is the time left at the stream's rate so far.
func (sb *streamBar) eta() string {
	left := sb.total.Load() - sb.records.Load()
	r := sb.rate()
	if left <= 0 || r <= 0 {
		return "0:00"
	}
	d := time.Duration(float64(left) / r * float64(time.Second)).Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

const nameWidth = 28

// sizedConsole is the console the bars are drawn on. A terminal nobody
// gave a size (a pseudo-terminal of script or of a CI runner reports 0
// columns and 0 rows) counts as 120 by 40, where mpb would draw nothing.
type sizedConsole struct{ *cupwriter.Writer }

func (c sizedConsole) GetTermSize() (width, height int, err error) {
	width, height, err = c.Writer.GetTermSize()
	if err == nil && (width <= 0 || height <= 0) {
		return 120, 40, nil
	}
	return width, height, err
}

// newLiveProgress starts the display on w for a run of n streams. Call
// finish when the run is over.
func newLiveProgress(w io.Writer, n int) *liveProgress {
	l := &liveProgress{p: mpb.New(mpb.WithConsoleWriter(sizedConsole{cupwriter.New(w, false)}), mpb.WithWidth(32),
		mpb.WithRefreshRate(120*time.Millisecond)),
		bars: map[string]*streamBar{}}
	l.overall = l.p.AddBar(int64(n), mpb.BarPriority(1<<30), // the last line
		mpb.PrependDecorators(decor.Name("all streams", decor.WC{W: nameWidth, C: decor.DindentRight}),
			decor.CountersNoUnit("%d / %d streams", decor.WC{W: 22, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.Percentage(decor.WC{W: 6}),
			decor.Any(func(decor.Statistics) string { return "  " + counted(l.records.Load(), "record") }),
			decor.Name("  "), decor.Elapsed(decor.ET_STYLE_MMSS)))
	return l
}

// update shows p; the engine calls it from the stream's goroutine, so
// the calls for one stream never overlap.
func (l *liveProgress) update(p syncer.Progress) {
	l.mu.Lock()
	sb := l.bars[p.Stream]
	l.mu.Unlock()
	if sb == nil && !p.Done {
		sb = l.addBar(p.Stream, p.Total, p.Began)
		l.mu.Lock()
		l.bars[p.Stream] = sb
		l.mu.Unlock()
	}
	if sb != nil {
		l.records.Add(int64(p.Records) - sb.records.Swap(int64(p.Records)))
		sb.pages.Store(int64(p.Pages))
		if p.Total >= 0 && int64(p.Total) < int64(p.Records) {
			sb.total.Store(int64(p.Records))
			sb.bar.SetTotal(int64(p.Records), false) // more than counted: changes during the run
		}
		sb.bar.SetCurrent(int64(p.Records))
	}
	if !p.Done {
		return
	}
	if sb != nil {
		if p.Err != nil {
			sb.bar.Abort(true)
		} else {
			sb.bar.SetTotal(-1, true)
		}
	}
	if p.Err == nil {
		l.overall.Increment() // the whole-run line counts the streams that finished
	}
}

// addBar makes a stream's bar: with a total when Outreach counted the
// stream, else a spinner.
func (l *liveProgress) addBar(name string, total int, began time.Time) *streamBar {
	sb := &streamBar{began: began}
	if began.IsZero() {
		sb.began = time.Now()
	}
	sb.total.Store(int64(total))
	pages := decor.Any(func(decor.Statistics) string { return counted(sb.pages.Load(), "page") }, decor.WC{W: 11})
	rate := decor.Any(func(decor.Statistics) string { return fmt.Sprintf("%.0f/s", sb.rate()) }, decor.WC{W: 9})
	label := decor.Name(name, decor.WC{W: nameWidth, C: decor.DindentRight})
	if total > 0 {
		sb.bar = l.p.AddBar(int64(total), mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(label, decor.CountersNoUnit("%d / %d", decor.WC{W: 22, C: decor.DindentRight})),
			mpb.AppendDecorators(decor.Percentage(decor.WC{W: 6}), pages, rate,
				decor.Any(func(decor.Statistics) string { return "  ETA " + sb.eta() })))
		return sb
	}
	sb.bar = l.p.AddSpinner(0, mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(label, decor.Any(func(st decor.Statistics) string { return counted(st.Current, "record") }, decor.WC{W: 22, C: decor.DindentRight})),
		mpb.AppendDecorators(pages, rate))
	return sb
}

// Write prints p above the bars (log lines go through it while the
// display runs).
func (l *liveProgress) Write(p []byte) (int, error) { return l.p.Write(p) }

// finish ends the display once the run is over: the whole-run line stays
// as it is (complete, or cut short by an interruption).
func (l *liveProgress) finish() {
	l.overall.Abort(false) // no-op when every stream ended
	l.p.Wait()
}
