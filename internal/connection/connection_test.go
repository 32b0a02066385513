package connection

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "manual"},
		{"manual", "manual"},
		{"15m", "every 15m"},
		{"every 1h30m", "every 1h30m"},
		{" every 2h ", "every 2h"},
		{"*/15 * * * *", "cron */15 * * * *"},
		{"cron 0  6 * * 1-5", "cron 0 6 * * 1-5"},
	} {
		s, err := ParseSchedule(tc.in)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tc.in, err)
			continue
		}
		if s.String() != tc.want {
			t.Errorf("ParseSchedule(%q) = %q, want %q", tc.in, s, tc.want)
		}
		back, err := ParseSchedule(s.String())
		if err != nil || back.String() != s.String() {
			t.Errorf("round trip of %q: %v, %v", s, back, err)
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"30s", "too short; the shortest is 1m"},
		{"800h", "too long"},
		{"10.5s", "too short"},
		{"61500ms", "fraction of a second"},
		{"soon", "not an interval such as 15m"},
		{"* * * *", "has 4 fields; want 5"},
		{"0 0 * * * *", "has 6 fields; want 5"},
		{"61 * * * *", "cron expression \"61 * * * *\""},
		{"0 0 30 2 *", "never fires"},
		{"@daily", "not an interval"},
	} {
		_, err := ParseSchedule(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSchedule(%q) error = %v, want it to contain %q", tc.in, err, tc.want)
		}
	}
}

func TestScheduleNext(t *testing.T) {
	every, _ := Every(15 * time.Minute)
	cron, _ := CronSchedule("0 */6 * * *")
	due := mustTime(t, "2026-12-04T10:00:00Z")
	for _, tc := range []struct {
		name      string
		s         Schedule
		last, now string
		want      string
	}{
		{"interval on time", every, "2026-12-04T10:00:00Z", "2026-12-04T10:00:01Z", "2026-12-04T10:15:00Z"},
		{"interval exactly at next", every, "2026-12-04T10:00:00Z", "2026-12-04T10:15:00Z", "2026-12-04T10:30:00Z"},
		{"interval after an outage collapses", every, "2026-12-04T10:00:00Z", "2026-12-04T13:07:00Z", "2026-12-04T13:15:00Z"},
		{"cron on time", cron, "2026-12-04T06:00:00Z", "2026-12-04T06:00:02Z", "2026-12-04T12:00:00Z"},
		{"cron after an outage collapses", cron, "2026-12-04T06:00:00Z", "2026-12-05T01:00:00Z", "2026-12-05T06:00:00Z"},
	} {
		got := tc.s.Next(mustTime(t, tc.last), mustTime(t, tc.now))
		if !got.Equal(mustTime(t, tc.want)) {
			t.Errorf("%s: Next = %s, want %s", tc.name, got, tc.want)
		}
	}
	if got := every.First(due); !got.Equal(due) {
		t.Errorf("interval First = %s, want now", got)
	}
	if got := cron.First(due); !got.Equal(mustTime(t, "2026-12-04T12:00:00Z")) {
		t.Errorf("cron First = %s", got)
	}
	var manual Schedule
	if !manual.IsManual() || !manual.First(due).IsZero() || !manual.Next(due, due).IsZero() {
		t.Error("a manual schedule is never due")
	}
}

func TestScheduleJSON(t *testing.T) {
	s, _ := ParseSchedule("*/5 * * * *")
	b, err := json.Marshal(struct{ S Schedule }{s})
	if err != nil || string(b) != `{"S":"cron */5 * * * *"}` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var v struct{ S Schedule }
	if err := json.Unmarshal([]byte(`{"S":"every 20m"}`), &v); err != nil || v.S.Interval() != 20*time.Minute {
		t.Fatalf("unmarshal: %v %v", v.S, err)
	}
	if err := json.Unmarshal([]byte(`{"S":"every 2s"}`), &v); err == nil {
		t.Fatal("unmarshal accepted a 2s interval")
	}
}

func valid() *Connection {
	s, _ := Every(15 * time.Minute)
	c := &Connection{Name: "Acme EU (prod)", CredentialID: "cred1", DestinationURL: "sqlite:./outreach.db", Schedule: s}
	c.SetDefaults()
	return c
}

func TestDefaults(t *testing.T) {
	c := valid()
	if c.Direction != DirectionSource || c.QuotaShare != 1 || c.Namespace != "acme_eu_prod" {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultNamespace(t *testing.T) {
	for in, want := range map[string]string{
		"Acme EU (prod)":          "acme_eu_prod",
		"  --Sales--  ":           "sales",
		"2026 backfill":           "c_2026_backfill",
		"Café":                    "caf",
		"日本":                      "c",
		"public":                  "c_public",
		"river jobs":              "c_river_jobs",
		strings.Repeat("ab_", 30): "ab_ab_ab_ab_ab_ab_ab_ab_ab_ab_ab_ab_ab_a",
	} {
		got := DefaultNamespace(in)
		if got != want {
			t.Errorf("DefaultNamespace(%q) = %q, want %q", in, got, want)
		}
		if err := ValidateNamespace(got); err != nil {
			t.Errorf("DefaultNamespace(%q) = %q is invalid: %v", in, got, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := &Connection{Name: " x", Direction: "sideways", DestinationURL: "postgres://u:hunter2@db/", Streams: []string{"prospects", "prospects", "a;b"},
		PageSize: 5000, QuotaShare: 1.5, Namespace: "Bad-NS", NotifyURL: "ftp://x"}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"starts or ends with a space", "a credential is required", `direction "sideways"`,
		"names no database", `stream "prospects" is listed twice`, `"a;b" is not a stream name`, "page size 5000",
		"quota share 1.5", `namespace "Bad-NS"`, "notify URL"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error shows the password:\n%s", msg)
	}
	// Each problem names its field.
	fields := map[string]int{}
	for _, p := range FieldErrorsOf(err) {
		fields[p.Field]++
		if strings.HasPrefix(p.Message, "connection:") || p.Message == "" {
			t.Errorf("message of %s: %q", p.Field, p.Message)
		}
	}
	want := map[string]int{FieldName: 1, FieldCredential: 1, FieldDirection: 1, FieldDestination: 1, FieldStreams: 2,
		FieldPageSize: 1, FieldQuotaShare: 1, FieldNamespace: 1, FieldNotifyURL: 1}
	if !maps.Equal(fields, want) {
		t.Errorf("problems by field = %v, want %v", fields, want)
	}
	if _, err := ParseSchedule("5s"); len(FieldErrorsOf(err)) != 1 || FieldErrorsOf(err)[0].Field != FieldSchedule {
		t.Errorf("ParseSchedule(5s): %v, want a FieldError of the schedule", err)
	}
	if (&Connection{Name: "ok", CredentialID: "c", Direction: DirectionSource, DestinationURL: "sqlite:x.db", QuotaShare: 1,
		Namespace: "ok"}).Validate() != nil {
		t.Error("a valid connection is refused (or a nil FieldErrors is not nil)")
	}
}

func TestValidateFields(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Connection)
		want   string // "" = valid
	}{
		{"empty streams", func(c *Connection) { c.Streams = []string{} }, "stream list is empty"},
		{"zero quota", func(c *Connection) { c.QuotaShare = 0 }, "quota share 0"},
		{"half quota", func(c *Connection) { c.QuotaShare = 0.5 }, ""},
		{"postgres", func(c *Connection) { c.DestinationURL = "postgresql://me@127.0.0.1:5432/warehouse?sslmode=disable" }, ""},
		{"jsonl", func(c *Connection) { c.DestinationURL = "jsonl:./out" }, ""},
		{"sqlite without path", func(c *Connection) { c.DestinationURL = "sqlite:" }, "needs a file path"},
		{"unknown scheme", func(c *Connection) { c.DestinationURL = "mysql://x/y" }, `scheme "mysql" is unknown`},
		{"no URL", func(c *Connection) { c.DestinationURL = "" }, "destination URL is required"},
		{"reserved namespace", func(c *Connection) { c.Namespace = "pg_catalog" }, "reserved"},
		{"long namespace", func(c *Connection) { c.Namespace = strings.Repeat("a", 41) }, "at most 40"},
		{"notify with password", func(c *Connection) { c.NotifyURL = "https://u:p@hooks.example/x" }, "must not carry a user"},
		{"notify ok", func(c *Connection) { c.NotifyURL = "http://127.0.0.1:9/hook" }, ""},
		{"control character", func(c *Connection) { c.Name = "a\x00b" }, "printable"},
		{"long name", func(c *Connection) { c.Name = strings.Repeat("n", 101) }, "longer than 100"},
	} {
		c := valid()
		tc.change(c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestRedactedURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h/db":              "postgres://u:xxxxx@h/db",
		"postgres://u@h/db?password=secret&x=1": "postgres://u@h/db?password=xxxxx&x=1",
		"sqlite:./a.db":                         "sqlite:./a.db",
	} {
		if got := RedactedURL(in); got != want {
			t.Errorf("RedactedURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRunLogIsBounded(t *testing.T) {
	var r Run
	for i := range MaxLogLines + 7 {
		r.AddLog(fmt.Sprintf("line %d\n", i))
	}
	if len(r.Log) != MaxLogLines || r.Log[0] != "line 7" || r.Log[MaxLogLines-1] != fmt.Sprintf("line %d", MaxLogLines+6) {
		t.Fatalf("log = %d lines, first %q, last %q", len(r.Log), r.Log[0], r.Log[len(r.Log)-1])
	}
	r.AddLog(strings.Repeat("é", MaxLogLineLen))
	last := r.Log[len(r.Log)-1]
	if len(last) > MaxLogLineLen+len("…") || !strings.HasSuffix(last, "…") || !utf8Valid(last) {
		t.Fatalf("long line kept as %d bytes", len(last))
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestRunStats(t *testing.T) {
	var r Run
	r.Stream("prospects").Records += 10
	r.Stream("accounts").Pages++
	r.Stream("prospects").Deletions += 2
	tot := r.Totals()
	if len(r.Streams) != 2 || tot.Records != 10 || tot.Pages != 1 || tot.Deletions != 2 {
		t.Fatalf("stats %+v totals %+v", r.Streams, tot)
	}
	r.Finish(time.Unix(5, 0), Failed, fmt.Errorf("boom"))
	if r.Outcome != Failed || r.Error != "boom" || r.EndedAt.IsZero() {
		t.Fatalf("finish: %+v", r)
	}
	if !Scheduled.Valid() || Trigger("cron").Valid() {
		t.Fatal("Trigger.Valid")
	}
}
