package outreach

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// ResourceID identifies a resource: its JSON:API type and integer id.
type ResourceID struct {
	Type string `json:"type"`
	ID   int64  `json:"id"`
}

// Relationship is one member of a resource's relationships, in any of the
// shapes Outreach sends: to-one data (an identifier or null), to-many data
// (identifiers, with links and meta), links only, or meta only.
type Relationship struct {
	// HasData reports whether the relationship carried data at all.
	HasData bool
	// ToMany reports whether data was an array.
	ToMany bool
	// Data holds the identifiers: none for a null to-one, one for a set
	// to-one, any number for to-many.
	Data []ResourceID
	// Related is links.related, when sent.
	Related string
	// Count is meta.count, when sent.
	Count *int
}

// ID returns the id of a to-one relationship, or 0 when it is null or not
// a to-one relationship with data.
func (r Relationship) ID() int64 {
	if r.ToMany || len(r.Data) == 0 {
		return 0
	}
	return r.Data[0].ID
}

// IDs returns the ids of the relationship's data.
func (r Relationship) IDs() []int64 {
	out := make([]int64, len(r.Data))
	for i, d := range r.Data {
		out[i] = d.ID
	}
	return out
}

// ToOne returns a to-one relationship that points at typ/id, or a null one
// when id is 0, for writes.
func ToOne(typ string, id int64) Relationship {
	if id == 0 {
		return Relationship{HasData: true}
	}
	return Relationship{HasData: true, Data: []ResourceID{{Type: typ, ID: id}}}
}

// UnmarshalJSON decodes any of the relationship shapes.
func (r *Relationship) UnmarshalJSON(b []byte) error {
	var raw struct {
		Data  json.RawMessage `json:"data"`
		Links struct {
			Related string `json:"related"`
		} `json:"links"`
		Meta struct {
			Count *int `json:"count"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = Relationship{Related: raw.Links.Related, Count: raw.Meta.Count}
	data := bytes.TrimSpace(raw.Data)
	switch {
	case len(data) == 0:
	case string(data) == "null":
		r.HasData = true
	case data[0] == '[':
		r.HasData, r.ToMany = true, true
		if err := json.Unmarshal(data, &r.Data); err != nil {
			return fmt.Errorf("relationship data: %w", err)
		}
	default:
		var id ResourceID
		if err := json.Unmarshal(data, &id); err != nil {
			return fmt.Errorf("relationship data: %w", err)
		}
		r.HasData, r.Data = true, []ResourceID{id}
	}
	return nil
}

// MarshalJSON writes the relationship's data for a write document.
func (r Relationship) MarshalJSON() ([]byte, error) {
	switch {
	case r.ToMany:
		data := r.Data
		if data == nil {
			data = []ResourceID{}
		}
		return json.Marshal(map[string]any{"data": data})
	case len(r.Data) == 0:
		return []byte(`{"data":null}`), nil
	}
	return json.Marshal(map[string]any{"data": r.Data[0]})
}

// Resource is a resource object of any type, custom objects included.
// Attributes keep the JSON Outreach sent, so attributes this package does
// not know survive a read-modify-write round trip.
type Resource struct {
	Type          string                     `json:"type"`
	ID            int64                      `json:"id,omitempty"`
	Attributes    map[string]json.RawMessage `json:"attributes,omitempty"`
	Relationships map[string]Relationship    `json:"relationships,omitempty"`
	Links         struct {
		Self string `json:"self,omitempty"`
	} `json:"links,omitzero"`
	Meta json.RawMessage `json:"meta,omitempty"`
}

// String returns attribute name as a string; "" when absent, null or not
// a string.
func (r *Resource) String(name string) string {
	var s string
	json.Unmarshal(r.Attributes[name], &s)
	return s
}

// Int returns attribute name as an integer, and whether it was one.
func (r *Resource) Int(name string) (int64, bool) {
	raw := r.Attributes[name]
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

// Time returns a date-time attribute; the zero time when absent or null.
func (r *Resource) Time(name string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, r.String(name))
	return t
}

// IsNull reports whether attribute name is absent or null.
func (r *Resource) IsNull(name string) bool {
	raw, ok := r.Attributes[name]
	return !ok || string(raw) == "null"
}

// Set sets attribute name to v, encoded as JSON.
func (r *Resource) Set(name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("outreach: encode attribute %s: %w", name, err)
	}
	if r.Attributes == nil {
		r.Attributes = map[string]json.RawMessage{}
	}
	r.Attributes[name] = raw
	return nil
}

// RelID returns the id of to-one relationship name, or 0.
func (r *Resource) RelID(name string) int64 { return r.Relationships[name].ID() }

// Clone returns a deep copy.
func (r *Resource) Clone() *Resource {
	c := *r
	c.Attributes = maps.Clone(r.Attributes)
	c.Relationships = make(map[string]Relationship, len(r.Relationships))
	for k, v := range r.Relationships {
		v.Data = slices.Clone(v.Data)
		c.Relationships[k] = v
	}
	return &c
}

// Document is a decoded JSON:API top-level document.
type Document struct {
	Data     json.RawMessage `json:"data"`
	Included []*Resource     `json:"included"`
	Links    struct {
		First string `json:"first"`
		Prev  string `json:"prev"`
		Next  string `json:"next"`
	} `json:"links"`
	Meta struct {
		Count          *int `json:"count"`
		CountTruncated bool `json:"count_truncated"`
	} `json:"meta"`
}

// DecodeDocument decodes a JSON:API document.
func DecodeDocument(b []byte) (*Document, error) {
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("outreach: decode JSON:API document: %w", err)
	}
	return &d, nil
}

// Resources decodes data as a list of resources.
func (d *Document) Resources() ([]*Resource, error) {
	var rs []*Resource
	if err := json.Unmarshal(d.Data, &rs); err != nil {
		return nil, fmt.Errorf("outreach: data is not a list of resources: %w", err)
	}
	return rs, nil
}

// Resource decodes data as one resource.
func (d *Document) Resource() (*Resource, error) {
	var r Resource
	if err := json.Unmarshal(d.Data, &r); err != nil || r.Type == "" {
		return nil, fmt.Errorf("outreach: data is not a resource: %.100s", d.Data)
	}
	return &r, nil
}
