package outreach

//go:generate go run ./internal/gen -out resources_gen.go

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
	"time"
)

// Typed resources (Prospect, Account, SequenceState, ...) are generated
// from the resource catalog in resources_gen.go. Each has the resource's
// attributes as typed fields (nil pointers for null or absent values), its
// to-one relationships as <Name>ID and its to-many relationships with data
// as <Name>IDs, and Extra with every attribute the catalog does not know
// that has a value, so nothing Outreach sends is lost.
//
// Typed values are for reading. Write with Resource, sending only what
// changes.

// typed is implemented by the generated resource types.
type typed interface {
	fromResource(r *Resource) error
	collectionPath() string
}

// ListOf iterates over every record of the collection of T, decoded:
//
//	for p, err := range outreach.ListOf[outreach.Prospect](ctx, client, nil) { ... }
func ListOf[T any, PT interface {
	*T
	typed
}](ctx context.Context, c *Client, opts *ListOptions) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		var zero T
		path := PT(&zero).collectionPath()
		for r, err := range c.List(ctx, path, opts) {
			if err != nil {
				yield(nil, err)
				return
			}
			v := new(T)
			if err := PT(v).fromResource(r); err != nil {
				yield(nil, err)
				return
			}
			if !yield(v, nil) {
				return
			}
		}
	}
}

// GetAs fetches one record of T by id.
func GetAs[T any, PT interface {
	*T
	typed
}](ctx context.Context, c *Client, id int64) (*T, error) {
	var zero T
	r, _, err := c.Get(ctx, PT(&zero).collectionPath(), id, nil)
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := PT(v).fromResource(r); err != nil {
		return nil, err
	}
	return v, nil
}

// Decode decodes r into a typed resource such as *Prospect.
func Decode[T any, PT interface {
	*T
	typed
}](r *Resource) (*T, error) {
	v := new(T)
	if err := PT(v).fromResource(r); err != nil {
		return nil, err
	}
	return v, nil
}

var null = []byte("null")

func isNull(raw json.RawMessage) bool { return len(raw) == 4 && string(raw) == "null" }

func decodeString(raw json.RawMessage) (*string, error) {
	if bytes.Equal(raw, null) {
		return nil, nil
	}
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		s := string(raw[1 : len(raw)-1])
		return &s, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func decodeInt(raw json.RawMessage) (*int64, error) {
	if bytes.Equal(raw, null) {
		return nil, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		// Outreach sometimes sends whole numbers as 12.0.
		f, ferr := strconv.ParseFloat(string(raw), 64)
		if ferr != nil || f != float64(int64(f)) {
			return nil, fmt.Errorf("not an integer: %.40s", raw)
		}
		n = int64(f)
	}
	return &n, nil
}

func decodeFloat(raw json.RawMessage) (*float64, error) {
	if bytes.Equal(raw, null) {
		return nil, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return nil, fmt.Errorf("not a number: %.40s", raw)
	}
	return &f, nil
}

func decodeBool(raw json.RawMessage) (*bool, error) {
	switch string(raw) {
	case "null":
		return nil, nil
	case "true":
		b := true
		return &b, nil
	case "false":
		b := false
		return &b, nil
	}
	return nil, fmt.Errorf("not a boolean: %.40s", raw)
}

func decodeTime(raw json.RawMessage) (*time.Time, error) {
	s, err := decodeString(raw)
	if err != nil || s == nil {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return nil, fmt.Errorf("not a date-time: %q", *s)
	}
	return &t, nil
}

func decodeStrings(raw json.RawMessage) ([]string, error) {
	if bytes.Equal(raw, null) {
		return nil, nil
	}
	var ss []string
	if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, err
	}
	return ss, nil
}

func decodeHistogram(raw json.RawMessage) ([][2]int64, error) {
	if bytes.Equal(raw, null) {
		return nil, nil
	}
	var h [][2]int64
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, err
	}
	return h, nil
}

func decodeRaw(raw json.RawMessage) (json.RawMessage, error) {
	if bytes.Equal(raw, null) {
		return nil, nil
	}
	return bytes.Clone(raw), nil
}

func relID(r Relationship) *int64 {
	if !r.HasData || r.ToMany || len(r.Data) == 0 {
		return nil
	}
	id := r.Data[0].ID
	return &id
}
