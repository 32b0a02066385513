package outreach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
)

// writeBody encodes {"data": r} for a create or update; id 0 is left out.
func writeBody(r *Resource) ([]byte, error) {
	if r == nil || r.Type == "" {
		return nil, errors.New("outreach: a write needs a resource with a type")
	}
	data := map[string]any{"type": r.Type}
	if r.ID != 0 {
		data["id"] = r.ID
	}
	if len(r.Attributes) > 0 {
		data["attributes"] = r.Attributes
	}
	if len(r.Relationships) > 0 {
		data["relationships"] = r.Relationships
	}
	return json.Marshal(map[string]any{"data": data})
}

func (c *Client) writeResource(ctx context.Context, method, path string, r *Resource) (*Resource, error) {
	body, err := writeBody(r)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	return decodeOne(resp)
}

// decodeOne decodes a document whose data is one resource.
func decodeOne(body []byte) (*Resource, error) {
	doc, err := DecodeDocument(body)
	if err != nil {
		return nil, err
	}
	return doc.Resource()
}

// Create creates r (its ID must be 0) in the collection at path and
// returns the created resource. Validation failures are *APIError with
// status 422; ErrorObject.Source.Pointer names the offending member. A
// create is not retried after a failure the server may have acted on,
// unless the retry policy allows writes.
func (c *Client) Create(ctx context.Context, path string, r *Resource) (*Resource, error) {
	if r != nil && r.ID != 0 {
		return nil, fmt.Errorf("outreach: create %s: the id must be 0, Outreach assigns it", r.Type)
	}
	return c.writeResource(ctx, "POST", path, r)
}

// Update sends the attributes and relationships of r (type and id
// required) as a PATCH and returns the updated resource. Send only what
// changes: read-only attributes are refused.
func (c *Client) Update(ctx context.Context, path string, r *Resource) (*Resource, error) {
	if r == nil || r.ID == 0 {
		return nil, errors.New("outreach: update needs a resource with an id")
	}
	return c.writeResource(ctx, "PATCH", path+"/"+strconv.FormatInt(r.ID, 10), r)
}

// Delete deletes the record; a missing one is an *APIError matching
// ErrNotFound.
func (c *Client) Delete(ctx context.Context, path string, id int64) error {
	_, err := c.Do(ctx, "DELETE", path+"/"+strconv.FormatInt(id, 10), nil)
	return err
}

// Action runs a member action, such as
// Action(ctx, "sequenceStates", 7, "pause", nil), with params sent as
// actionParams[name]=value, and returns the resource afterwards.
func (c *Client) Action(ctx context.Context, path string, id int64, action string, params map[string]string) (*Resource, error) {
	q := url.Values{}
	for k, v := range params {
		q.Set("actionParams["+k+"]", v)
	}
	ref := path + "/" + strconv.FormatInt(id, 10) + "/actions/" + url.PathEscape(action)
	if len(q) > 0 {
		ref += "?" + q.Encode()
	}
	resp, err := c.Do(ctx, "POST", ref, nil)
	if err != nil {
		return nil, err
	}
	return decodeOne(resp)
}
