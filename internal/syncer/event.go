package syncer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// Delivery is one webhook delivery of Outreach, decoded: a single record's
// event ({"data": {...}, "meta": {"eventName": "prospect.updated",
// "deliveredAt": ...}}, and with payloadVersion 2 a "beforeUpdate" block,
// which is not needed and ignored).
type Delivery struct {
	// Type and ID are the record's JSON:API type and id.
	Type string
	ID   int64
	// Action is the part of meta.eventName after the type: created,
	// updated, destroyed, or a member action (completed, advanced, ...).
	Action string
	// DeliveredAt is meta.deliveredAt; zero when absent or unreadable.
	DeliveredAt time.Time

	attributes    map[string]json.RawMessage
	relationships map[string]json.RawMessage
}

// ErrMalformed is the error of ParseDelivery for a body that is not a
// delivery.
var ErrMalformed = errors.New("not an Outreach webhook delivery")

// ParseDelivery decodes a delivery body.
func ParseDelivery(body []byte) (*Delivery, error) {
	var raw struct {
		Data *struct {
			Type          string                     `json:"type"`
			ID            json.RawMessage            `json:"id"`
			Attributes    map[string]json.RawMessage `json:"attributes"`
			Relationships map[string]json.RawMessage `json:"relationships"`
		} `json:"data"`
		Meta struct {
			EventName   string `json:"eventName"`
			DeliveredAt string `json:"deliveredAt"`
		} `json:"meta"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if raw.Data == nil || raw.Data.Type == "" {
		return nil, fmt.Errorf("%w: no data.type", ErrMalformed)
	}
	id, ok := recordID(raw.Data.ID)
	if !ok {
		return nil, fmt.Errorf("%w: data.id %.40s is not a record id", ErrMalformed, raw.Data.ID)
	}
	typ, action, ok := strings.Cut(raw.Meta.EventName, ".")
	if !ok || typ != raw.Data.Type || action == "" {
		return nil, fmt.Errorf("%w: meta.eventName %q does not name an event of %s", ErrMalformed, raw.Meta.EventName, raw.Data.Type)
	}
	d := &Delivery{Type: typ, ID: id, Action: action, attributes: raw.Data.Attributes, relationships: raw.Data.Relationships}
	if t, err := time.Parse(time.RFC3339Nano, raw.Meta.DeliveredAt); err == nil {
		d.DeliveredAt = t
	}
	return d, nil
}

// Kind is what the delivery does to the record's row: member actions
// (task completed, mailing opened, sequence state advanced) change the
// record as updates do.
func (d *Delivery) Kind() connection.EventKind {
	switch d.Action {
	case "created":
		return connection.Created
	case "destroyed":
		return connection.Destroyed
	}
	return connection.Updated
}

// Event converts the delivery into an event of stream s (the stream of
// d.Type), with the columns of s as a sync fills them. Only what the
// delivery carries is set: Outreach sends the changed attributes of an
// update. Relationships come flattened, {"owner": {"type": "owner",
// "id": 2}} (the relationship's name where JSON:API has the target type);
// the JSON:API form {"data": {...}} is read too. To-many relationships are
// never delivered. Attributes the stream has no column for go to the
// extras column on creates and destroys; on updates the extras column is
// left alone (it would lose what the update does not repeat), so the next
// sync brings them. now is the event's time when meta.deliveredAt is
// missing.
func (d *Delivery) Event(s *connection.Stream, now time.Time) (connection.Event, error) {
	if s.Type != d.Type {
		return connection.Event{}, fmt.Errorf("a %s delivery for stream %s", d.Type, s.Name)
	}
	r := &outreach.Resource{Type: d.Type, ID: d.ID, Attributes: d.attributes, Relationships: map[string]outreach.Relationship{}}
	for name, raw := range d.relationships {
		rel, err := flatRelationship(raw)
		if err != nil {
			return connection.Event{}, fmt.Errorf("%w: relationship %s: %v", ErrMalformed, name, err)
		}
		r.Relationships[name] = rel
	}
	c := newConverter(s)
	rec, err := c.convert(r)
	if err != nil {
		return connection.Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	kind := d.Kind()
	set := make([]bool, len(s.Columns))
	set[0] = true
	for name := range d.attributes {
		if i, ok := c.attrs[name]; ok {
			set[i] = true
		} else if !s.Skip[name] && kind != connection.Updated {
			set[c.extras] = true
		}
	}
	for name, rel := range r.Relationships {
		if i, ok := c.rels[name]; ok && rel.HasData && !s.Columns[i].ToMany {
			set[i] = true
		}
	}
	if kind == connection.Created && c.extras > 0 {
		set[c.extras] = true // nothing unknown: an empty extras column, as a sync leaves it
	}
	at := d.DeliveredAt
	if at.IsZero() {
		at = now
	}
	return connection.Event{Kind: kind, Record: rec, Set: set, At: at.UTC().Format("2006-01-02T15:04:05.000Z")}, nil
}

// flatRelationship reads {"type": "owner", "id": 2}, {"data": {...}},
// {"data": null} or null.
func flatRelationship(raw json.RawMessage) (outreach.Relationship, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return outreach.Relationship{HasData: true}, nil
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return outreach.Relationship{}, err
	}
	if _, ok := probe["data"]; ok {
		var rel outreach.Relationship
		err := json.Unmarshal(raw, &rel)
		return rel, err
	}
	var flat struct {
		Type string      `json:"type"`
		ID   json.Number `json:"id"`
	}
	if err := json.Unmarshal(raw, &flat); err != nil {
		return outreach.Relationship{}, err
	}
	if flat.ID == "" {
		return outreach.Relationship{HasData: true}, nil
	}
	id, err := flat.ID.Int64()
	if err != nil {
		return outreach.Relationship{}, fmt.Errorf("id %q is not a record id", flat.ID)
	}
	return outreach.ToOne(flat.Type, id), nil
}

// recordID reads a record id: a JSON number (integral, as 42 or 42.0) or
// a string of digits.
func recordID(raw json.RawMessage) (int64, bool) {
	text := strings.Trim(string(bytes.TrimSpace(raw)), `"`)
	if id, err := strconv.ParseInt(text, 10, 64); err == nil {
		return id, id > 0
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f != float64(int64(f)) || f <= 0 {
		return 0, false
	}
	return int64(f), true
}
