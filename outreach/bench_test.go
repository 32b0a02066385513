package outreach_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// prospectPage fetches one 1000-record prospect page from a sandbox.
func prospectPage(b *testing.B) []byte {
	b.Helper()
	srv := startSandbox(b, sandbox.Options{Prospects: 1000})
	c := newClient(b, srv, nil)
	body, err := c.Do(context.Background(), "GET", "prospects?page[size]=1000", nil)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkDecodeProspectPage compares the client's decoding of a
// 1000-record prospect page with encoding/json into map[string]any on the
// same bytes.
func BenchmarkDecodeProspectPage(b *testing.B) {
	page := prospectPage(b)
	report := func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
	}
	b.Run("outreach.DecodePage", func(b *testing.B) {
		for b.Loop() {
			p, err := outreach.DecodePage(page)
			if err != nil || len(p.Resources) != 1000 {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("outreach.Layout.DecodePage", func(b *testing.B) { // the sync's path: rows of slots
		first, err := outreach.DecodePage(page)
		if err != nil {
			b.Fatal(err)
		}
		var attrs, rels []string
		for name := range first.Resources[0].Attributes {
			attrs = append(attrs, name)
		}
		for name := range first.Resources[0].Relationships {
			rels = append(rels, name)
		}
		l := outreach.NewLayout(attrs, rels)
		b.ReportAllocs()
		for b.Loop() {
			p, err := l.DecodePage(page)
			if err != nil || len(p.Rows) != 1000 {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("outreach.DecodePage+Prospect", func(b *testing.B) {
		for b.Loop() {
			p, err := outreach.DecodePage(page)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range p.Resources {
				if _, err := outreach.Decode[outreach.Prospect](r); err != nil {
					b.Fatal(err)
				}
			}
		}
		report(b)
	})
	b.Run("encoding-json-map", func(b *testing.B) {
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(page, &m); err != nil || len(m["data"].([]any)) != 1000 {
				b.Fatal(err)
			}
		}
		report(b)
	})
}
