package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// liveProgress draws a line per running stream on a terminal: records,
// pages and rate. Off a terminal the structured logs tell the same.
type liveProgress struct {
	p     *mpb.Progress
	mu    sync.Mutex
	bars  map[string]*mpb.Bar
	stats map[string]syncer.Progress
	start map[string]time.Time
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newLiveProgress(w io.Writer) *liveProgress {
	return &liveProgress{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(24)), bars: map[string]*mpb.Bar{},
		stats: map[string]syncer.Progress{}, start: map[string]time.Time{}}
}

func (l *liveProgress) update(p syncer.Progress) {
	l.mu.Lock()
	bar, ok := l.bars[p.Stream]
	if !ok {
		l.start[p.Stream] = time.Now()
		stream := p.Stream
		bar = l.p.AddSpinner(0,
			mpb.PrependDecorators(decor.Name(stream, decor.WC{W: 30, C: decor.DindentRight})),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				l.mu.Lock()
				defer l.mu.Unlock()
				st := l.stats[stream]
				rate := float64(st.Records) / max(time.Since(l.start[stream]).Seconds(), 0.001)
				return fmt.Sprintf("%8d records %5d pages %8.0f/s", st.Records, st.Pages, rate)
			})),
			mpb.BarRemoveOnComplete())
		l.bars[p.Stream] = bar
	}
	l.stats[p.Stream] = p
	l.mu.Unlock()
	bar.SetCurrent(int64(p.Records))
	if p.Done {
		bar.SetTotal(-1, true)
	}
}

func (l *liveProgress) wait() { l.p.Wait() }
