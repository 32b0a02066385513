package webhooks_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/credential/credentialtest"
	"github.com/outreach-connector/outreach-connector/internal/destinations"
	"github.com/outreach-connector/outreach-connector/internal/metrics"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/webhooks"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

const secret = "s3cret-of-webhook-7"

type receiverEnv struct {
	t      *testing.T
	srv    *httptest.Server
	conn   *connection.Connection
	dest   string
	met    *metrics.Metrics
	logs   *bytes.Buffer
	app    *sqlite.DB
	recv   *webhooks.Receiver
	keys   *credential.Keyring
	nowFor time.Time
}

// newReceiverEnv makes an app database with one live connection into a
// SQLite file (streams prospects and accounts) subscribed with webhook 7.
func newReceiverEnv(t *testing.T, dest string) *receiverEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	app, err := sqlite.Open(ctx, filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	cred := credentialtest.NewRecord("main")
	if err := app.CreateCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	if dest == "" {
		dest = "sqlite:" + filepath.Join(dir, "out.db")
	}
	c := &connection.Connection{ID: connection.NewID(), Name: "acme", CredentialID: cred.ID, DestinationURL: dest, Streams: []string{"prospects", "accounts"},
		Schedule: connection.Schedule{}, Live: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	c.SetDefaults()
	if err := app.Connections().CreateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	keys, err := credential.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := webhooks.Seal(keys, c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Webhooks().AddSubscription(ctx, &webhooks.Subscription{ConnectionID: c.ID, WebhookID: 7, Resource: "*", URL: "https://x/webhooks/" + c.ID,
		Secret: sealed, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e := &receiverEnv{t: t, conn: c, dest: dest, met: metrics.New(), logs: &bytes.Buffer{}, app: app, keys: keys}
	e.recv, err = webhooks.NewReceiver(webhooks.ReceiverOptions{Store: app.Webhooks(), Connections: app.Connections(), Keys: keys,
		Metrics: metrics.NewWebhooks(e.met), Logger: slogTo(e.logs),
		Open: func(ctx context.Context, url, ns string) (connection.Destination, func() error, error) {
			return destinations.Open(ctx, url, ns, io.Discard)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.recv.Close() })
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/{connection}", e.recv)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// post sends body signed with key ("" unsigned) as webhook hook.
func (e *receiverEnv) post(conn, key string, body []byte) int {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/webhooks/"+conn, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.api+json")
	req.Header.Set("Outreach-Webhook-Id", "7")
	if key != "" {
		req.Header.Set(webhooks.SignatureHeader, sandbox.Sign(key, body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// row returns the prospect's title, ownerId and deleted mark; ok false
// when there is no row.
func (e *receiverEnv) row(id int64) (title string, owner int64, deleted string, ok bool) {
	e.t.Helper()
	driver, dsn := "sqlite", "file:"+strings.TrimPrefix(e.dest, "sqlite:")+"?mode=ro"
	q := `SELECT title, "ownerId", _deleted_at FROM acme__prospects WHERE id = $1`
	if strings.HasPrefix(e.dest, "postgres") {
		driver, dsn = "pgx", e.dest
		q = `SELECT title, "ownerId", to_char(_deleted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') FROM acme.prospects WHERE id = $1`
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	var t, d sql.NullString
	var o sql.NullInt64
	err = db.QueryRow(q, id).Scan(&t, &o, &d)
	if err == sql.ErrNoRows || (err != nil && (strings.Contains(err.Error(), "no such table") || strings.Contains(err.Error(), "unable to open"))) {
		return "", 0, "", false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return t.String, o.Int64, d.String, true
}

func (e *receiverEnv) metrics() string {
	rec := httptest.NewRecorder()
	e.met.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func delivery(event string, id int64, attrs, rels string) []byte {
	typ, _, _ := strings.Cut(event, ".")
	return []byte(`{"data":{"type":"` + typ + `","id":` + itoa(id) + `,"attributes":{` + attrs + `},"relationships":{` + rels + `}},` +
		`"meta":{"deliveredAt":"2026-03-01T10:00:00.000+00:00","eventName":"` + event + `","jobId":"j"}}`)
}

func TestReceiverAppliesSignedDeliveries(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testReceiverApplies(t, "") })
	t.Run("postgres", func(t *testing.T) { testReceiverApplies(t, pgtest.Database(t)) })
}

func testReceiverApplies(t *testing.T, dest string) {
	e := newReceiverEnv(t, dest)
	id := e.conn.ID
	created := delivery("prospect.created", 5, `"title":"CEO","updatedAt":"2026-03-01T10:00:00.000Z","weirdNew":1`, `"owner":{"type":"owner","id":3}`)
	if got := e.post(id, secret, created); got != http.StatusNoContent {
		t.Fatalf("created: %d\n%s", got, e.logs)
	}
	if title, owner, del, ok := e.row(5); !ok || title != "CEO" || owner != 3 || del != "" {
		t.Errorf("after created: %q %d %q %v", title, owner, del, ok)
	}
	// An update carries what changed; the owner stays.
	if got := e.post(id, secret, delivery("prospect.updated", 5, `"title":"CTO","updatedAt":"2026-03-01T11:00:00.000Z"`, ``)); got != http.StatusNoContent {
		t.Fatalf("updated: %d", got)
	}
	// Replayed and out of order: older than the row, changes nothing.
	if got := e.post(id, secret, created); got != http.StatusNoContent {
		t.Fatalf("replayed: %d", got)
	}
	if title, owner, _, _ := e.row(5); title != "CTO" || owner != 3 {
		t.Errorf("after a replayed create: %q %d, want CTO 3", title, owner)
	}
	// payloadVersion 2: beforeUpdate is ignored.
	v2 := bytes.Replace(delivery("prospect.updated", 5, `"title":"CFO","updatedAt":"2026-03-01T12:00:00.000Z"`, `"owner":{"type":"owner","id":4}`),
		[]byte(`,"meta"`), []byte(`,"beforeUpdate":{"type":"prospect","id":5,"attributes":{"title":"CTO"}},"meta"`), 1)
	if got := e.post(id, secret, v2); got != http.StatusNoContent {
		t.Fatalf("v2 update: %d", got)
	}
	if title, owner, _, _ := e.row(5); title != "CFO" || owner != 4 {
		t.Errorf("after a v2 update: %q %d", title, owner)
	}
	if got := e.post(id, secret, delivery("prospect.destroyed", 5, `"title":"CFO","updatedAt":"2026-03-01T12:00:00.000Z"`, ``)); got != http.StatusNoContent {
		t.Fatalf("destroyed: %d", got)
	}
	if _, _, del, ok := e.row(5); !ok || del != "2026-03-01T10:00:00.000Z" {
		t.Errorf("after destroyed: deleted %q (row %v), want the delivery's time", del, ok)
	}
	// A type the connection does not sync: accepted, nothing written.
	if got := e.post(id, secret, delivery("task.completed", 9, `"note":"x"`, ``)); got != http.StatusNoContent {
		t.Errorf("a task delivery: %d, want 204", got)
	}
	m := e.metrics()
	for _, want := range []string{`outreach_connector_webhook_deliveries_applied_total{connection="acme",outcome="written",stream="prospects"} 4`,
		`outreach_connector_webhook_deliveries_applied_total{connection="acme",outcome="stale",stream="prospects"} 1`,
		`outreach_connector_webhook_deliveries_received_total{connection="acme"} 6`, `outreach_connector_webhook_apply_lag_seconds_count 5`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(e.logs.String(), secret) {
		t.Error("the secret was logged")
	}
}

func TestReceiverRefuses(t *testing.T) {
	e := newReceiverEnv(t, "")
	id := e.conn.ID
	body := delivery("prospect.created", 5, `"title":"CEO","updatedAt":"2026-03-01T10:00:00.000Z"`, ``)
	for _, c := range []struct {
		name, conn, key string
		body            []byte
		want            int
	}{
		{"wrong secret", id, "guess", body, 401},
		{"unsigned", id, "", body, 401},
		{"unknown connection", "nope", secret, body, 404},
		{"not JSON", id, secret, []byte(`{"data":`), 400},
		{"no event name", id, secret, []byte(`{"data":{"type":"prospect","id":5,"attributes":{}},"meta":{}}`), 400},
		{"bad attribute", id, secret, delivery("prospect.created", 6, `"engagedScore":"lots"`, ``), 400},
		{"too large", id, secret, bytes.Repeat([]byte(" "), webhooks.MaxBody+1), 413},
	} {
		if got := e.post(c.conn, c.key, c.body); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	// A signature of the body with one byte changed.
	req, _ := http.NewRequest("POST", e.srv.URL+"/webhooks/"+id, bytes.NewReader(bytes.Replace(body, []byte("CEO"), []byte("CEX"), 1)))
	req.Header.Set(webhooks.SignatureHeader, sandbox.Sign(secret, body))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("altered body: %v %v", resp, err)
	}
	if _, _, _, ok := e.row(5); ok {
		t.Error("a refused delivery wrote a row")
	}
	// Not live any more: refused as unknown.
	e.conn.Live = false
	if err := e.app.Connections().UpdateConnection(context.Background(), e.conn); err != nil {
		t.Fatal(err)
	}
	if got := e.post(id, secret, body); got != 404 {
		t.Errorf("a connection no longer live: %d, want 404", got)
	}
	m := e.metrics()
	for _, want := range []string{`{reason="bad_signature"} 3`, `{reason="unknown_connection"} 2`, `{reason="malformed"} 3`, `{reason="too_large"} 1`} {
		if !strings.Contains(m, "outreach_connector_webhook_deliveries_rejected_total"+want) {
			t.Errorf("metrics lack rejected%s:\n%s", want, m)
		}
	}
}
