package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
)

// DefaultCacheFor is how long the proxy trusts what it read of an API key
// or a credential before reading it again: a revoked key is refused
// within this time.
const DefaultCacheFor = 2 * time.Second

// tokenCacheFor is how long an access token read from the credential
// store is reused; a token Outreach refuses is dropped at once.
const tokenCacheFor = 30 * time.Second

// ttlCache remembers values found (never misses) for a while.
type ttlCache[T any] struct {
	mu sync.Mutex
	m  map[string]ttlEntry[T]
}

type ttlEntry[T any] struct {
	v  T
	at time.Time
}

func (c *ttlCache[T]) get(k string, now time.Time, ttl time.Duration) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || ttl <= 0 || now.Sub(e.at) >= ttl || now.Before(e.at) {
		var zero T
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[T]) put(k string, v T, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]ttlEntry[T]{}
	}
	c.m[k] = ttlEntry[T]{v: v, at: now}
}

// keyByHash returns the key with the hash, from the cache or the store.
func (p *Proxy) keyByHash(ctx context.Context, hash string) (*Key, error) {
	now := p.now()
	if k, ok := p.keys.get(hash, now, p.opts.CacheFor); ok {
		return k, nil
	}
	k, err := p.opts.Keys.KeyByHash(ctx, hash)
	if err == nil {
		p.keys.put(hash, k, now)
	}
	return k, err
}

// credential returns a credential by name or id, from the cache or the
// manager.
func (p *Proxy) credential(ctx context.Context, idOrName string) (*credential.Record, error) {
	now := p.now()
	if rec, ok := p.creds.get(idOrName, now, p.opts.CacheFor); ok {
		return rec, nil
	}
	rec, err := p.opts.Credentials.Get(ctx, idOrName)
	if err == nil {
		p.creds.put(idOrName, rec, now)
	}
	return rec, err
}

// cachedTokens reuses a credential's access token for a while; a token
// Outreach refused is replaced through the manager at once.
type cachedTokens struct {
	p   *Proxy
	id  string
	src *credential.TokenSource
}

func (t *cachedTokens) Token(ctx context.Context) (string, error) {
	now := t.p.now()
	if tok, ok := t.p.tokens.get(t.id, now, tokenCacheFor); ok {
		return tok, nil
	}
	tok, err := t.src.Token(ctx)
	if err == nil {
		t.p.tokens.put(t.id, tok, now)
	}
	return tok, err
}

func (t *cachedTokens) Refresh(ctx context.Context, rejected string) (string, error) {
	tok, err := t.src.Refresh(ctx, rejected)
	if err == nil {
		t.p.tokens.put(t.id, tok, t.p.now())
	}
	return tok, err
}
