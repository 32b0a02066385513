package service

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"time"
)

// teeHandler sends every record to the service's handler and, at info
// level and above, as one text line into the run's log.
type teeHandler struct {
	base slog.Handler
	run  *runLog
	// attrs and groups given by With/WithGroup, replayed on the line.
	text slog.Handler
	buf  *lineBuffer
}

// lineBuffer collects what the text handler writes for one record.
type lineBuffer struct{ bytes.Buffer }

func (t *teeHandler) textHandler() slog.Handler {
	if t.text == nil {
		t.buf = &lineBuffer{}
		t.text = slog.NewTextHandler(&t.buf.Buffer, &slog.HandlerOptions{Level: slog.LevelInfo,
			ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && a.Key == slog.TimeKey {
					return slog.String(slog.TimeKey, a.Value.Time().UTC().Format(time.RFC3339))
				}
				return a
			}})
	}
	return t.text
}

func (t *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || t.base.Enabled(ctx, l)
}

func (t *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if t.base.Enabled(ctx, r.Level) {
		err = t.base.Handle(ctx, r)
	}
	if r.Level >= slog.LevelInfo {
		t.run.mu.Lock()
		h := t.textHandler()
		t.buf.Reset()
		h.Handle(ctx, r)
		t.run.run.AddLog(strings.TrimRight(t.buf.String(), "\n"))
		t.run.mu.Unlock()
	}
	return err
}

func (t *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	t.run.mu.Lock()
	defer t.run.mu.Unlock()
	n := &teeHandler{base: t.base.WithAttrs(as), run: t.run}
	n.text = t.textHandler().WithAttrs(as)
	n.buf = t.buf
	return n
}

func (t *teeHandler) WithGroup(name string) slog.Handler {
	t.run.mu.Lock()
	defer t.run.mu.Unlock()
	n := &teeHandler{base: t.base.WithGroup(name), run: t.run}
	n.text = t.textHandler().WithGroup(name)
	n.buf = t.buf
	return n
}
