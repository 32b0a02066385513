package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/outreach-connector/outreach-connector/outreach"
)

// keyedTimeout bounds a keyed write once the caller is gone: it runs on so
// that its answer is kept for the caller's repeat.
const keyedTimeout = 5 * time.Minute

// idempotent serves a write with an Idempotency-Key: the first request
// claims the key and goes to Outreach (once: POST and PATCH are never
// retried), and its answer is kept; a repeat within IdempotencyTTL gets the
// kept answer without calling Outreach; a repeat while the first runs gets
// 409; the same key on another request gets 422.
func (p *Proxy) idempotent(ctx context.Context, w http.ResponseWriter, r *http.Request, ex *exchange, client *outreach.Client,
	fr *outreach.ForwardRequest, owner, key string) {
	if len(key) > 255 {
		writeError(w, http.StatusBadRequest, "badIdempotencyKey", "Bad Request", "An Idempotency-Key has at most 255 characters; a UUID is a good one.")
		return
	}
	var body []byte
	if fr.Body != nil {
		b, err := readLimited(fr.Body, p.opts.MaxIdempotentBody)
		if errors.Is(err, errTooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "bodyTooLarge", "Content Too Large",
				"A write with an Idempotency-Key may carry at most "+strconv.FormatInt(p.opts.MaxIdempotentBody, 10)+" bytes.")
			return
		}
		if err != nil {
			ex.err = err
			writeError(w, http.StatusBadRequest, "unreadableBody", "Bad Request", "The request body could not be read: "+err.Error())
			return
		}
		body = b
		fr.Body, fr.ContentLength = bytes.NewReader(b), int64(len(b))
		fr.GetBody = func() (io.Reader, error) { return bytes.NewReader(b), nil }
	}
	now := p.now()
	claim, kept, err := p.opts.Idempotency.Begin(r.Context(), owner, key, fingerprint(r.Method, fr.Path, body), now, now.Add(IdempotencyTTL))
	if err != nil {
		ex.err = err
		p.log.Error("proxy: idempotency store", "err", err)
		writeError(w, http.StatusServiceUnavailable, "storeUnavailable", "Service Unavailable", "The app database does not answer; try again.")
		return
	}
	switch claim {
	case Done:
		ex.replayed = true
		copyHeader(w.Header(), kept.Header)
		w.Header().Set(HeaderReplayed, "true")
		w.WriteHeader(kept.Status)
		w.Write(kept.Body)
		return
	case InProgress:
		if now.Sub(kept.Started) > keyedTimeout+time.Minute {
			// The process that claimed the key stopped before Outreach's
			// answer was kept: whether the write happened is unknown, and
			// every repeat is told so rather than risk writing twice.
			rec := newRecorder()
			writeError(rec, http.StatusBadGateway, "outcomeUnknown", "Bad Gateway",
				"The first request with this Idempotency-Key stopped before Outreach's answer was kept; it may or may not have been done. Look the record up, then use a new key.")
			st := &Stored{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}
			if err := p.opts.Idempotency.Finish(r.Context(), owner, key, st); err != nil && !errors.Is(err, ErrIdempotencyLost) {
				p.log.Error("proxy: keep the answer of an idempotency key", "err", err)
			}
			copyHeader(w.Header(), st.Header)
			w.WriteHeader(st.Status)
			w.Write(st.Body)
			return
		}
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusConflict, "idempotencyKeyInUse", "Conflict",
			"A request with this Idempotency-Key is still running (or its process stopped before Outreach answered); repeat it later.")
		return
	case Mismatch:
		writeError(w, http.StatusUnprocessableEntity, "idempotencyKeyReused", "Unprocessable Entity",
			"This Idempotency-Key was used for another request (method, path or body differ); use a new key for a new request.")
		return
	}
	// The caller may go away; the write runs on, so that its answer is
	// kept for the repeat. Its wait for the rate limit stays the caller's.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keyedTimeout)
	defer cancel()
	st, err := p.keep(wctx, client, fr)
	if err != nil {
		ex.err = err
		if !sentMaybe(err) {
			// Outreach never saw it: the key is free for the repeat.
			if aerr := p.opts.Idempotency.Abandon(wctx, owner, key); aerr != nil {
				p.log.Error("proxy: release idempotency key", "err", aerr)
			}
			p.writeForwardError(w, ex, err)
			return
		}
		// The write may or may not have happened: the repeat is told the
		// same, rather than risk doing it twice.
		rec := newRecorder()
		writeUnknownOutcome(rec, err, true)
		st = &Stored{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}
	}
	if ferr := p.opts.Idempotency.Finish(wctx, owner, key, st); ferr != nil {
		p.log.Error("proxy: keep the answer of an idempotency key", "err", ferr)
	}
	copyHeader(w.Header(), st.Header)
	w.WriteHeader(st.Status)
	w.Write(st.Body)
}

// keep sends the write and reads its answer whole.
func (p *Proxy) keep(ctx context.Context, client *outreach.Client, fr *outreach.ForwardRequest) (*Stored, error) {
	resp, err := client.Forward(ctx, fr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := readLimited(resp.Body, p.opts.MaxIdempotentBody)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	copyHeader(h, resp.Header)
	h.Del("Content-Length")
	return &Stored{Status: resp.StatusCode, Header: h, Body: b}, nil
}

// recorder captures an answer we make ourselves, to keep it.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
