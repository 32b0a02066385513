package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/outreach-connector/outreach-connector/outreach"
)

// maxPage caps one page's body read for X-Paginate: all.
const maxPage = 64 << 20

// page is what pagination reads of a list answer.
type page struct {
	Data  json.RawMessage `json:"data"`
	Links struct {
		Next string `json:"next"`
	} `json:"links"`
}

// paginate answers a list request with every page's resources, one JSON
// object a line (application/x-ndjson), following links.next. An answer
// other than 200 on the first page is passed on as it is; a failure on a
// later page ends the stream with one line {"errors":[...]} (the status is
// sent by then).
func (p *Proxy) paginate(ctx context.Context, w http.ResponseWriter, ex *exchange, client *outreach.Client, fr *outreach.ForwardRequest) {
	flusher, _ := w.(http.Flusher)
	started := false
	for {
		resp, err := client.Forward(ctx, fr)
		if err != nil {
			ex.err = err
			if !started {
				p.writeForwardError(w, ex, err)
			} else {
				st, id, title, detail := forwardProblem(err)
				errorLine(w, st, id, title, detail)
			}
			return
		}
		if resp.StatusCode != http.StatusOK {
			if !started {
				copyHeader(w.Header(), resp.Header)
				w.WriteHeader(resp.StatusCode)
				io.Copy(w, resp.Body)
			} else {
				errorLine(w, http.StatusBadGateway, "pageFailed", "Bad Gateway",
					fmt.Sprintf("Outreach answered %d to the next page; the lines above are complete resources, but not every one.", resp.StatusCode))
			}
			resp.Body.Close()
			return
		}
		body, err := readLimited(resp.Body, maxPage)
		resp.Body.Close()
		var pg page
		var items []json.RawMessage
		if err == nil {
			err = json.Unmarshal(body, &pg)
		}
		if err == nil {
			if t := bytes.TrimSpace(pg.Data); len(t) == 0 || t[0] != '[' {
				if !started {
					writeError(w, http.StatusBadRequest, "notAList", "Bad Request", "X-Paginate: all needs a list request (its answer's data is not a list).")
					return
				}
				err = fmt.Errorf("a page's data is not a list")
			} else {
				err = json.Unmarshal(pg.Data, &items)
			}
		}
		if err != nil {
			ex.err = err
			if !started {
				writeError(w, http.StatusBadGateway, "unreadablePage", "Bad Gateway", "Outreach's answer could not be read as a JSON:API page: "+err.Error())
			} else {
				errorLine(w, http.StatusBadGateway, "unreadablePage", "Bad Gateway", "A page could not be read: "+err.Error())
			}
			return
		}
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
		}
		var line bytes.Buffer
		for _, it := range items {
			line.Reset()
			if err := json.Compact(&line, it); err != nil {
				line.Write(it)
			}
			line.WriteByte('\n')
			if _, err := w.Write(line.Bytes()); err != nil {
				ex.err = err
				return // the caller went away
			}
		}
		ex.pages++
		if flusher != nil {
			flusher.Flush()
		}
		if pg.Links.Next == "" {
			return
		}
		fr = &outreach.ForwardRequest{Method: http.MethodGet, Path: pg.Links.Next, Header: fr.Header, Retry: true}
	}
}

func errorLine(w io.Writer, status int, id, title, detail string) {
	b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"id": id, "status": strconv.Itoa(status), "title": title, "detail": detail}}})
	w.Write(append(b, '\n'))
}
