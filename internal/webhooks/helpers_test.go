package webhooks_test

import (
	"io"
	"log/slog"
	"strconv"
)

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
