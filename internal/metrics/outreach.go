package metrics

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach-connector/outreach-connector/outreach"
)

// ObserveRequests returns an observer for outreach.WithObserver, for a
// client acting with the named credential for the Outreach user with the
// given id ("" when not known yet). Every HTTP exchange counts once in
// outreach_connector_outreach_requests_total, retries included, by method
// and status; the URL is not a label. An answer carrying X-RateLimit-*
// headers sets the user's rate-limit gauges.
func (m *Metrics) ObserveRequests(credential, user string) func(outreach.RequestEvent) {
	credential, user = label(credential), label(user)
	return func(ev outreach.RequestEvent) {
		status := "error"
		if ev.StatusCode != 0 {
			status = strconv.Itoa(ev.StatusCode)
		}
		m.requests.WithLabelValues(credential, methodLabel(ev.Method), status).Inc()
		if user != "" && ev.RateLimit.Limit > 0 {
			m.rate.seen(user, ev.RateLimit.Limit, ev.RateLimit.Remaining)
		}
	}
}

// SetQuotaShare records the share of the Outreach user's hourly limit the
// connector allows itself (outreach.RateLimiterOptions.QuotaLimit), in (0, 1].
func (m *Metrics) SetQuotaShare(user string, share float64) {
	m.rate.setShare(label(user), share)
}

// ForgetUser drops the rate-limit series of an Outreach user no credential
// acts for any more.
func (m *Metrics) ForgetUser(user string) { m.rate.forget(label(user)) }

// ForgetCredential drops the request series of a deleted credential.
func (m *Metrics) ForgetCredential(credential string) {
	m.requests.DeletePartialMatch(prometheus.Labels{"credential": label(credential)})
}

// methodLabel bounds the method label to the methods HTTP defines.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// rateLimits holds, per Outreach user, the rate limit the latest answer
// reported and the configured quota share; it collects them together so a
// scrape never sees a limit from one answer and a remaining count from
// another.
type rateLimits struct {
	limit, remaining, used, share *prometheus.Desc

	mu    sync.Mutex
	users map[string]*userRate
}

type userRate struct {
	known            bool // limit and remaining come from an answer
	limit, remaining int
	share            float64 // 0 when not set
}

func newRateLimits() *rateLimits {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "outreach", name), help, []string{"user"}, nil)
	}
	return &rateLimits{
		limit:     d("ratelimit_limit", "Requests the Outreach user may make per window (X-RateLimit-Limit of the latest answer)."),
		remaining: d("ratelimit_remaining", "Requests left to the Outreach user in the current window (X-RateLimit-Remaining of the latest answer)."),
		used:      d("ratelimit_used_ratio", "Share of the Outreach user's window already used, (limit - remaining) / limit, as of the latest answer."),
		share:     d("ratelimit_quota_share", "Share of the Outreach user's limit the connector allows itself (its quota limit)."),
		users:     map[string]*userRate{},
	}
}

func (r *rateLimits) user(u string) *userRate {
	ur, ok := r.users[u]
	if !ok {
		ur = &userRate{}
		r.users[u] = ur
	}
	return ur
}

func (r *rateLimits) seen(user string, limit, remaining int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ur := r.user(user)
	ur.known, ur.limit, ur.remaining = true, limit, remaining
}

func (r *rateLimits) setShare(user string, share float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.user(user).share = share
}

func (r *rateLimits) forget(user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.users, user)
}

func (r *rateLimits) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.limit
	ch <- r.remaining
	ch <- r.used
	ch <- r.share
}

func (r *rateLimits) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	users := make(map[string]userRate, len(r.users))
	for u, ur := range r.users {
		users[u] = *ur
	}
	r.mu.Unlock()
	for u, ur := range users {
		if ur.known {
			send(ch, r.limit, prometheus.GaugeValue, float64(ur.limit), u)
			send(ch, r.remaining, prometheus.GaugeValue, float64(ur.remaining), u)
			used := float64(ur.limit-max(ur.remaining, 0)) / float64(ur.limit)
			send(ch, r.used, prometheus.GaugeValue, min(max(used, 0), 1), u)
		}
		if ur.share > 0 {
			send(ch, r.share, prometheus.GaugeValue, ur.share, u)
		}
	}
}
