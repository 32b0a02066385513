package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RefreshTokenMaxAge is how long Outreach honours a refresh token after it
// was issued: 14 days.
const RefreshTokenMaxAge = 14 * 24 * time.Hour

// TokenState is where one credential's tokens stand, as its store holds it.
type TokenState struct {
	Credential string // the credential's name
	Status     string // such as "connected" or "needs_reauthorization"
	// ExpiresAt is when the access token expires; zero when the credential
	// holds none.
	ExpiresAt time.Time
	// IssuedAt is when the refresh token held now was issued: the last
	// refresh, or the authorization when none came since; zero when the
	// credential holds none.
	IssuedAt time.Time
}

// TokenReader lists the credentials' token states; it is called at every
// scrape.
type TokenReader func(context.Context) ([]TokenState, error)

// SetTokenReader installs the reader behind the credential metrics;
// until one is installed they are absent.
func (m *Metrics) SetTokenReader(f TokenReader) { m.tokens.read.set(f) }

// tokenCollector reports each credential's status, its access token's
// time to expiry and its refresh token's age, computed at scrape time.
type tokenCollector struct {
	m                               *Metrics
	read                            readerSlot[TokenReader]
	status, expiresIn, age, maxAgeD *prometheus.Desc
	maxAge                          prometheus.Metric
}

func newTokenCollector(m *Metrics) *tokenCollector {
	c := &tokenCollector{
		m: m,
		status: prometheus.NewDesc(namespace+"_credential_status",
			"1 for each credential, labelled with its status.", []string{"credential", "status"}, nil),
		expiresIn: prometheus.NewDesc(namespace+"_access_token_expires_in_seconds",
			"Seconds until the credential's access token expires; negative once expired.", []string{"credential"}, nil),
		age: prometheus.NewDesc(namespace+"_refresh_token_age_seconds",
			"Seconds since the credential's refresh token was issued; Outreach stops honouring it at outreach_connector_refresh_token_max_age_seconds.",
			[]string{"credential"}, nil),
		maxAgeD: prometheus.NewDesc(namespace+"_refresh_token_max_age_seconds",
			"How long Outreach honours a refresh token after it was issued (14 days).", nil, nil),
	}
	c.maxAge = prometheus.MustNewConstMetric(c.maxAgeD, prometheus.GaugeValue, RefreshTokenMaxAge.Seconds())
	return c
}

func (c *tokenCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.status
	ch <- c.expiresIn
	ch <- c.age
	ch <- c.maxAgeD
}

func (c *tokenCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- c.maxAge
	read := c.read.get()
	if read == nil {
		return
	}
	ctx, cancel := c.m.readContext()
	defer cancel()
	states, err := read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.status, err)
		return
	}
	now := c.m.now()
	for _, s := range states {
		send(ch, c.status, prometheus.GaugeValue, 1, s.Credential, s.Status)
		if !s.ExpiresAt.IsZero() {
			send(ch, c.expiresIn, prometheus.GaugeValue, s.ExpiresAt.Sub(now).Seconds(), s.Credential)
		}
		if !s.IssuedAt.IsZero() {
			send(ch, c.age, prometheus.GaugeValue, now.Sub(s.IssuedAt).Seconds(), s.Credential)
		}
	}
}
