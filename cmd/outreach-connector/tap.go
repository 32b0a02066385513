package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/singer"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// tapConfig is tap-outreach's config.json, plus api_base_url to point at
// a sandbox.
type tapConfig struct {
	ClientID     string  `json:"client_id"`
	ClientSecret string  `json:"client_secret"`
	RedirectURI  string  `json:"redirect_uri"`
	RefreshToken string  `json:"refresh_token"`
	StartDate    string  `json:"start_date"`
	PageSize     any     `json:"page_size"`
	QuotaLimit   any     `json:"quota_limit"`
	APIBaseURL   string  `json:"api_base_url"`
	quota        float64 // parsed
	pageSize     int
}

func number(v any) (float64, error) {
	switch v := v.(type) {
	case nil:
		return 0, nil
	case float64:
		return v, nil
	case string:
		var f float64
		_, err := fmt.Sscan(v, &f)
		return f, err
	}
	return 0, fmt.Errorf("not a number: %v", v)
}

func newTapCommand(logger func() (*slog.Logger, error)) *cobra.Command {
	var (
		configPath, statePath, catalogPath string
		credName                           string
		discover                           bool
		store                              storeFlags
	)
	cmd := &cobra.Command{
		Use:   "tap --config config.json [--credential NAME] [--state state.json] [--catalog catalog.json] [--discover]",
		Short: "Run as a Singer tap, a drop-in for tap-outreach",
		Long: `Speaks the Singer protocol on stdout (SCHEMA, RECORD, STATE; logs on stderr), with tap-outreach's
config keys (client_id, client_secret, redirect_uri, refresh_token, start_date, page_size, quota_limit),
stream and field names, and bookmarks. --discover prints the catalog (with --config, the org's custom
objects too, as sync has them); --catalog selects streams.

Outreach rotates refresh tokens: the tap keeps the newest one in the credential store given by --db
and --key-file (default outreach-connector.db and outreach.key in the working directory), under the credential
"tap-<client_id>", and uses it on later runs; the refresh_token in config.json is only read the first
time (or after the stored one stops working). The tap never revokes a refresh token. When Outreach's
token endpoint cannot be used right now (it mints one token a minute per user and app), the tap
stores nothing, exits non-zero and says to run again. A --state it cannot read is refused, never
ignored.

--credential NAME uses a credential added and authorized with "outreach-connector credentials"
instead; config.json then needs only start_date (and optionally page_size, quota_limit). See
"Getting a refresh token for tap" in docs/credentials.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if discover && configPath == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "No --config: the catalog lists Outreach's standard streams only; with --config it adds the org's custom objects.")
				return writeCatalog(out, syncer.Streams(catalog.Default()))
			}
			log, err := logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cfg, err := readTapConfig(configPath, credName == "")
			if err != nil {
				return err
			}
			var state []byte
			if statePath != "" {
				if state, err = readTapState(statePath); err != nil {
					return err
				}
			}
			m, _, closeStore, err := store.open(ctx, log.With("component", "credential"), nil)
			if err != nil {
				return err
			}
			defer closeStore()
			var rec *credential.Record
			if credName != "" {
				if rec, err = tapCredential(ctx, &store, m, credName); err != nil {
					return err
				}
			} else if rec, err = tapImport(ctx, m, cfg, configPath); err != nil {
				return err
			}
			client, err := outreach.NewClient(outreach.WithBaseURL(rec.APIBaseURL), outreach.WithTokenSource(m.TokenSource(rec.ID)),
				outreach.WithRateLimiter(outreach.NewRateLimiter(outreach.RateLimiterOptions{QuotaLimit: cfg.quota})))
			if err != nil {
				return err
			}
			// The org's custom objects are streams too, as in sync: only
			// Outreach's schema tells them.
			cat, err := syncer.Discover(ctx, client)
			if cat == nil {
				return err
			}
			if err != nil {
				log.Warn("standard streams only", "reason", err)
			}
			streams := syncer.Streams(cat)
			if discover {
				return writeCatalog(out, streams)
			}
			if catalogPath != "" {
				if streams, err = selectedStreams(catalogPath, streams); err != nil {
					return err
				}
			}
			start, err := time.Parse(time.RFC3339, cfg.StartDate)
			if err != nil {
				if start, err = time.Parse(time.DateOnly, cfg.StartDate); err != nil {
					return fmt.Errorf("config start_date %q: use an ISO 8601 date such as 2024-01-01T00:00:00Z", cfg.StartDate)
				}
			}
			w, err := singer.New(out, state)
			if err != nil {
				return err
			}
			results := syncer.NewEngine(client, w, log.With("component", "tap"), nil).Run(ctx, streams,
				syncer.Options{StartDate: start, PageSize: cfg.pageSize, Concurrency: 1})
			return syncer.Failed(results)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "tap-outreach config.json")
	f.StringVar(&credName, "credential", "", "use this credential of the store (added and authorized with the credentials command) instead of the config's client_id, client_secret, redirect_uri and refresh_token")
	f.StringVar(&statePath, "state", "", "Singer state to resume from")
	f.StringVar(&catalogPath, "catalog", "", "Singer catalog selecting the streams")
	f.BoolVar(&discover, "discover", false, "print the catalog and exit")
	store.register(f)
	return cmd
}

// readTapConfig reads config.json; the OAuth keys are required only when
// needAuth (no --credential).
func readTapConfig(path string, needAuth bool) (*tapConfig, error) {
	if path == "" {
		return nil, errors.New("--config is required (tap-outreach's config.json)")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg tapConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	var missing []string
	required := map[string]string{"start_date": cfg.StartDate}
	if needAuth {
		required["client_id"], required["client_secret"], required["redirect_uri"], required["refresh_token"] =
			cfg.ClientID, cfg.ClientSecret, cfg.RedirectURI, cfg.RefreshToken
	}
	for k, v := range required {
		if v == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("--config %s lacks %s", path, strings.Join(missing, ", "))
	}
	if needAuth {
		if err := checkRefreshToken(cfg.RefreshToken); err != nil {
			return nil, fmt.Errorf("--config %s: refresh_token %w", path, err)
		}
	}
	if cfg.APIBaseURL == "" {
		cfg.APIBaseURL = credential.DefaultAPIBaseURL
	}
	q, err := number(cfg.QuotaLimit)
	if err != nil || q < 0 || q > 1 {
		return nil, fmt.Errorf("config quota_limit %v: use a fraction between 0 and 1", cfg.QuotaLimit)
	}
	p, err := number(cfg.PageSize)
	if err != nil || p < 0 || p > outreach.MaxPageSize {
		return nil, fmt.Errorf("config page_size %v: use 1 to %d", cfg.PageSize, outreach.MaxPageSize)
	}
	cfg.quota, cfg.pageSize = q, int(p)
	return &cfg, nil
}

// checkRefreshToken refuses what cannot be a refresh token: nothing, the
// "null" that `jq -r` writes for a missing field, or text with spaces,
// quotes or JSON in it. Outreach's tokens (and the sandbox's) are a run of
// URL-safe characters. The error never repeats the value, which may be a
// secret pasted wrong.
func checkRefreshToken(tok string) error {
	switch strings.ToLower(strings.TrimSpace(tok)) {
	case "":
		return errors.New("is empty: put the refresh token there")
	case "null", "undefined", "none":
		return fmt.Errorf("is %q, not a token (`jq -r .refresh_token` writes that when the answer had none, as when minting failed): put a working refresh token there", tok)
	}
	for _, r := range tok {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~+/=", r)) {
			return errors.New("is not a token: it holds spaces, quotes, braces or other characters no refresh token has; put the bare token there")
		}
	}
	return nil
}

// tapImport finds the tap's own credential, "tap-<client_id>", importing
// the config's refresh token on the first run or when the stored one
// stopped working. It never revokes a token.
func tapImport(ctx context.Context, m *credential.Manager, cfg *tapConfig, configPath string) (*credential.Record, error) {
	name := "tap-" + cfg.ClientID[:min(len(cfg.ClientID), 16)]
	rec, err := m.Get(ctx, name)
	switch {
	case err != nil && !errors.Is(err, credential.ErrNotFound):
		return nil, err
	case err != nil:
		// First run: import the config's refresh token. A failed import
		// keeps nothing, so the next run starts afresh.
		rec, err = m.Import(ctx, credential.NewCredential{Name: name, Description: "tap-outreach config", ClientID: cfg.ClientID,
			ClientSecret: cfg.ClientSecret, Scopes: []string{}, Environment: credential.Production, APIBaseURL: cfg.APIBaseURL,
			RedirectURI: cfg.RedirectURI}, cfg.RefreshToken)
	case rec.Status != credential.StatusConnected:
		// The stored token stopped working (or an older run left it
		// half-imported): try the config's token; never revoke.
		rec, err = m.Reimport(ctx, rec.ID, cfg.RefreshToken)
	}
	if err != nil {
		if errors.Is(err, credential.ErrTryLater) {
			return nil, fmt.Errorf("%w\nNothing was read and nothing is lost: run the tap again later", err)
		}
		return nil, fmt.Errorf("%w\nPut a working refresh_token in %s, or use --credential (see \"Getting a refresh token for tap\" in docs/credentials.md)", err, configPath)
	}
	return rec, nil
}

// tapCredential is the credential named by --credential, connected.
func tapCredential(ctx context.Context, store *storeFlags, m *credential.Manager, name string) (*credential.Record, error) {
	rec, err := store.credential(ctx, m, name)
	if err != nil {
		return nil, err
	}
	if rec.Status != credential.StatusConnected {
		reason := ""
		if rec.LastError != "" {
			reason = " (" + rec.LastError + ")"
		}
		return nil, fmt.Errorf("--credential %s is %s%s: authorize it (outreach-connector credentials authorize %s)",
			name, strings.ReplaceAll(string(rec.Status), "_", " "), reason, name)
	}
	return rec, nil
}

// readTapState reads a Singer state file and refuses one the tap could
// not use: read anyway, it would silently mean "no bookmarks" and read
// every stream from start_date again.
func readTapState(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--state: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("--state %s: %s; fix the file, or leave --state out to read everything from start_date", path, fmt.Sprintf(format, args...))
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, bad("the file is empty (a Singer state looks like {\"bookmarks\": {\"prospects\": {\"updatedAt\": \"2024-01-01T00:00:00Z\"}}})")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, bad("not a JSON object: %v", err)
	}
	if len(top) == 0 {
		return raw, nil // {}: a state without bookmarks yet
	}
	bookmarks, ok := top["bookmarks"]
	if !ok {
		if _, meltano := top["singer_state"]; meltano {
			return nil, bad(`it wraps the state in "singer_state" (a Meltano export): pass the value of singer_state`)
		}
		keys := make([]string, 0, len(top))
		for k := range top {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return nil, bad(`it has no "bookmarks" (its keys: %s)`, strings.Join(keys, ", "))
	}
	var streams map[string]json.RawMessage
	if err := json.Unmarshal(bookmarks, &streams); err != nil || streams == nil {
		return nil, bad(`"bookmarks" is not an object of streams`)
	}
	for stream, b := range streams {
		var flat string
		if json.Unmarshal(b, &flat) == nil {
			if _, err := time.Parse(time.RFC3339Nano, flat); err != nil {
				return nil, bad("the bookmark of %s, %q, is not an RFC 3339 timestamp", stream, flat)
			}
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(b, &fields); err != nil || len(fields) == 0 {
			return nil, bad("the bookmark of %s is %s; want an object such as {\"updatedAt\": \"2024-01-01T00:00:00Z\"}", stream, b)
		}
		for field, v := range fields {
			str, ok := v.(string)
			if _, err := time.Parse(time.RFC3339Nano, str); !ok || err != nil {
				return nil, bad("the bookmark %s.%s = %v is not an RFC 3339 timestamp", stream, field, v)
			}
		}
	}
	return raw, nil
}

// writeCatalog prints a Singer catalog of the streams, all selected.
func writeCatalog(w interface{ Write([]byte) (int, error) }, streams []*connection.Stream) error {
	type entry struct {
		TapStreamID   string           `json:"tap_stream_id"`
		Stream        string           `json:"stream"`
		KeyProperties []string         `json:"key_properties"`
		Schema        map[string]any   `json:"schema"`
		Metadata      []map[string]any `json:"metadata"`
	}
	var out struct {
		Streams []entry `json:"streams"`
	}
	for _, s := range streams {
		top := map[string]any{"selected": true, "table-key-properties": []string{"id"}, "forced-replication-method": strings.ToUpper(string(s.Replication))}
		if s.CursorField != "" {
			top["valid-replication-keys"] = []string{s.CursorField}
		}
		md := []map[string]any{{"breadcrumb": []string{}, "metadata": top}}
		for _, c := range s.Columns {
			inclusion := "available"
			if c.Name == "id" || c.Name == s.CursorField {
				inclusion = "automatic"
			}
			md = append(md, map[string]any{"breadcrumb": []string{"properties", c.Name}, "metadata": map[string]any{"inclusion": inclusion}})
		}
		out.Streams = append(out.Streams, entry{TapStreamID: s.Name, Stream: s.Name, KeyProperties: []string{"id"}, Schema: singer.Schema(s), Metadata: md})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// selectedStreams keeps the streams a Singer catalog selects.
func selectedStreams(path string, all []*connection.Stream) ([]*connection.Stream, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--catalog: %w", err)
	}
	var cat struct {
		Streams []struct {
			TapStreamID string `json:"tap_stream_id"`
			Stream      string `json:"stream"`
			Selected    *bool  `json:"selected"`
			Metadata    []struct {
				Breadcrumb []string       `json:"breadcrumb"`
				Metadata   map[string]any `json:"metadata"`
			} `json:"metadata"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(raw, &cat); err != nil {
		return nil, fmt.Errorf("--catalog %s: %w", path, err)
	}
	selected := map[string][]string{} // stream → deselected fields
	for _, s := range cat.Streams {
		on := s.Selected != nil && *s.Selected
		var off []string
		for _, m := range s.Metadata {
			v, isBool := m.Metadata["selected"].(bool)
			switch {
			case len(m.Breadcrumb) == 0 && isBool:
				on = v
			case len(m.Breadcrumb) == 2 && m.Breadcrumb[0] == "properties" && isBool && !v && m.Metadata["inclusion"] != "automatic":
				off = append(off, m.Breadcrumb[1])
			}
		}
		if on {
			selected[cmp(s.TapStreamID, s.Stream)] = off
		}
	}
	var out []*connection.Stream
	for _, s := range all {
		if off, ok := selected[s.Name]; ok {
			out = append(out, s.Without(off))
			delete(selected, s.Name)
		}
	}
	for name := range selected {
		return nil, fmt.Errorf("--catalog selects %q, which is not a stream (see --discover)", name)
	}
	return out, nil
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
