package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

func newAPICommand(logger func() (*slog.Logger, error)) *cobra.Command {
	var (
		baseURL, token, data string
		queries              []string
		paginate, useSandbox bool
		quota                float64
		budget               int64
		credName             string
		store                storeFlags
	)
	cmd := &cobra.Command{
		Use:   "api METHOD PATH",
		Short: "Call any endpoint of the Outreach API with auth, rate limits and retries handled",
		Long: `Sends one request to the Outreach API and prints the answer's body.

PATH is relative to the API base URL ("prospects", "prospects/1", "sequenceStates/7/actions/pause")
and may carry a query string. The access token comes from a named credential (--credential, kept
valid and refreshed), from --token or OUTREACH_ACCESS_TOKEN, or --sandbox starts a local sandbox and
uses a token of its admin user.

With --paginate, GET follows links.next to the end and prints every record as one JSON line.
Errors go to stderr and the exit status is non-zero.`,
		Example: `  outreach-connector api --sandbox GET 'prospects?page[size]=2'
  outreach-connector api GET prospects -q 'filter[updatedAt]=2026-01-01..inf' -q sort=updatedAt --paginate
  echo '{"data":{"type":"account","attributes":{"name":"Acme"}}}' | outreach-connector api POST accounts --data -`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			method, path := strings.ToUpper(args[0]), args[1]
			switch method {
			case "GET", "POST", "PATCH", "DELETE":
			default:
				return fmt.Errorf("method %q: use GET, POST, PATCH or DELETE", args[0])
			}
			if paginate && method != "GET" {
				return errors.New("--paginate works with GET only")
			}
			log, err := logger()
			if err != nil {
				return err
			}
			var tokens outreach.TokenSource
			if credName != "" {
				m, _, closeStore, err := store.openExisting(cmd.Context(), log, nil)
				if err != nil {
					return err
				}
				defer closeStore()
				rec, err := store.credential(cmd.Context(), m, credName)
				if err != nil {
					return err
				}
				tokens, baseURL = m.TokenSource(rec.ID), rec.APIBaseURL
			}
			if useSandbox {
				srv, err := sandbox.Start("", sandbox.Options{})
				if err != nil {
					return err
				}
				defer srv.Close()
				access, _, err := srv.IssueToken(1)
				if err != nil {
					return err
				}
				baseURL, token = srv.URL+"/api/v2", access
			}
			if token == "" {
				token = os.Getenv("OUTREACH_ACCESS_TOKEN")
			}
			if tokens == nil && token == "" {
				return errors.New("no access token: pass --credential NAME or --token, set OUTREACH_ACCESS_TOKEN, or use --sandbox")
			}
			if tokens == nil {
				tokens = outreach.StaticToken(token)
			}
			body, err := readData(data, cmd.InOrStdin())
			if err != nil {
				return err
			}
			path, err = withQueries(path, queries)
			if err != nil {
				return err
			}
			client, err := outreach.NewClient(outreach.WithBaseURL(baseURL), outreach.WithTokenSource(tokens),
				outreach.WithRateLimiter(outreach.NewRateLimiter(outreach.RateLimiterOptions{QuotaLimit: quota, Budget: budget})))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if paginate {
				return printPages(cmd, client, path, out)
			}
			resp, err := client.Do(cmd.Context(), method, path, body)
			if err != nil {
				return err
			}
			if len(resp) > 0 {
				out.Write(resp)
				fmt.Fprintln(out)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&baseURL, "base-url", envOr("OUTREACH_BASE_URL", outreach.DefaultBaseURL), "API base URL (env OUTREACH_BASE_URL)")
	f.StringVar(&token, "token", "", "access token (env OUTREACH_ACCESS_TOKEN); never logged")
	f.StringArrayVarP(&queries, "query", "q", nil, "query parameter key=value, repeatable")
	f.StringVarP(&data, "data", "d", "", "request body: JSON, @file, or - for stdin")
	f.BoolVar(&paginate, "paginate", false, "follow links.next and print every record as a JSON line")
	f.BoolVar(&useSandbox, "sandbox", false, "start a local sandbox and call it")
	f.StringVar(&credName, "credential", "", "use this named credential (see credentials list)")
	store.register(f)
	f.Float64Var(&quota, "quota-limit", 1, "share of the hourly rate limit this command may use, in (0, 1]")
	f.Int64Var(&budget, "max-requests", 0, "stop after this many requests (0: no limit)")
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// readData reads --data: inline JSON, @file, or - for stdin.
func readData(data string, stdin io.Reader) ([]byte, error) {
	var raw []byte
	switch {
	case data == "":
		return nil, nil
	case data == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("--data -: read stdin: %w", err)
		}
		raw = b
	case strings.HasPrefix(data, "@"):
		b, err := os.ReadFile(data[1:])
		if err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		raw = b
	default:
		raw = []byte(data)
	}
	if !json.Valid(raw) {
		return nil, errors.New("--data is not valid JSON; send a JSON:API document such as {\"data\":{\"type\":\"account\",\"attributes\":{\"name\":\"Acme\"}}}")
	}
	return raw, nil
}

func withQueries(path string, queries []string) (string, error) {
	if len(queries) == 0 {
		return path, nil
	}
	u, err := url.Parse(path)
	if err != nil {
		return "", fmt.Errorf("path %q: %w", path, err)
	}
	q := u.Query()
	for _, kv := range queries {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return "", fmt.Errorf("--query %q: use key=value", kv)
		}
		q.Add(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func printPages(cmd *cobra.Command, client *outreach.Client, path string, out io.Writer) error {
	u, err := url.Parse(path)
	if err != nil {
		return fmt.Errorf("path %q: %w", path, err)
	}
	opts := &outreach.ListOptions{}
	if s := u.Query().Get("page[size]"); s != "" {
		fmt.Sscan(s, &opts.PageSize)
		q := u.Query()
		q.Del("page[size]")
		u.RawQuery = q.Encode()
	}
	enc := json.NewEncoder(out)
	for page, err := range client.Pages(cmd.Context(), u.String(), opts) {
		if err != nil {
			return err
		}
		for _, r := range page.Resources {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	}
	return nil
}
