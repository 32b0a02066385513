package connectiontest

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// MemStore is a connection.Store in memory, for tests of packages that
// use one. It keeps copies, so callers' values are never shared.
type MemStore struct {
	mu    sync.Mutex
	conns map[string]*connection.Connection
	runs  map[string][]*connection.Run // by connection id, oldest first
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{conns: map[string]*connection.Connection{}, runs: map[string][]*connection.Run{}}
}

var _ connection.Store = (*MemStore)(nil)

func copyConn(c *connection.Connection) *connection.Connection {
	v := *c
	if c.Streams != nil {
		v.Streams = slices.Clone(c.Streams)
	}
	return &v
}

func copyRun(r *connection.Run) *connection.Run {
	v := *r
	v.Streams = slices.Clone(r.Streams)
	v.Log = slices.Clone(r.Log)
	return &v
}

func (m *MemStore) clash(c *connection.Connection) error {
	for _, o := range m.conns {
		if o.ID == c.ID {
			continue
		}
		if o.Name == c.Name {
			return connection.ErrNameTaken
		}
		if o.Namespace == c.Namespace && o.DestinationURL == c.DestinationURL {
			return connection.ErrNamespaceTaken
		}
	}
	return nil
}

func (m *MemStore) CreateConnection(_ context.Context, c *connection.Connection) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.clash(c); err != nil {
		return err
	}
	m.conns[c.ID] = copyConn(c)
	return nil
}

func (m *MemStore) GetConnection(_ context.Context, id string) (*connection.Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.conns[id]
	if !ok {
		return nil, connection.ErrNotFound
	}
	return copyConn(c), nil
}

func (m *MemStore) GetConnectionByName(_ context.Context, name string) (*connection.Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.conns {
		if c.Name == name {
			return copyConn(c), nil
		}
	}
	return nil, connection.ErrNotFound
}

func (m *MemStore) ListConnections(context.Context) ([]*connection.Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*connection.Connection
	for _, c := range m.conns {
		out = append(out, copyConn(c))
	}
	slices.SortFunc(out, func(a, b *connection.Connection) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (m *MemStore) UpdateConnection(_ context.Context, c *connection.Connection) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.conns[c.ID]; !ok {
		return connection.ErrNotFound
	}
	if err := m.clash(c); err != nil {
		return err
	}
	m.conns[c.ID] = copyConn(c)
	return nil
}

func (m *MemStore) DeleteConnection(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.conns[id]; !ok {
		return connection.ErrNotFound
	}
	delete(m.conns, id)
	delete(m.runs, id)
	return nil
}

func (m *MemStore) StartRun(_ context.Context, r *connection.Run) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.conns[r.ConnectionID]; !ok {
		return connection.ErrNotFound
	}
	m.runs[r.ConnectionID] = append(m.runs[r.ConnectionID], copyRun(r))
	return nil
}

func (m *MemStore) UpdateRun(_ context.Context, r *connection.Run) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.runs[r.ConnectionID] {
		if o.ID == r.ID {
			if o.Outcome == connection.Running {
				c := copyRun(r)
				o.Streams, o.Log = c.Streams, c.Log
			}
			return nil
		}
	}
	return connection.ErrNotFound
}

func (m *MemStore) FinishRun(_ context.Context, r *connection.Run) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, o := range m.runs[r.ConnectionID] {
		if o.ID == r.ID {
			m.runs[r.ConnectionID][i] = copyRun(r)
			return nil
		}
	}
	return connection.ErrNotFound
}

func (m *MemStore) ListRuns(_ context.Context, connectionID string, limit int) ([]*connection.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	runs := slices.Clone(m.runs[connectionID])
	slices.SortStableFunc(runs, func(a, b *connection.Run) int { return b.StartedAt.Compare(a.StartedAt) })
	var out []*connection.Run
	for _, r := range runs[:min(limit, len(runs))] {
		out = append(out, copyRun(r))
	}
	return out, nil
}
