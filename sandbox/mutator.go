package sandbox

import (
	"fmt"
	"sync"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// mutatedTypes are the types the mutator changes: the ones a sync reads
// most, each with an attribute that it rewrites on update.
var mutatedTypes = []struct{ typ, attr string }{
	{"prospect", "title"}, {"account", "industry"}, {"opportunity", "name"}, {"task", "note"}, {"call", "note"},
}

// mutator keeps changing the org while clients read it: it creates,
// updates and deletes records through the same paths as the API, so
// updatedAt, webhooks and the overlay all move as they would on Outreach.
type mutator struct {
	sb   *Sandbox
	mu   sync.Mutex
	rng  rng
	stop chan struct{}
	done chan struct{}
	seq  int64
}

func newMutator(sb *Sandbox, seed uint64) *mutator {
	return &mutator{sb: sb, rng: newRNG(seed, 0x6d7574)}
}

// setRate starts, changes or stops (perSecond <= 0) the background changes.
func (m *mutator) setRate(perSecond float64) {
	m.mu.Lock()
	stop, done := m.stop, m.done
	m.stop, m.done = nil, nil
	m.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	if perSecond <= 0 {
		return
	}
	stop, done = make(chan struct{}), make(chan struct{})
	m.mu.Lock()
	m.stop, m.done = stop, done
	m.mu.Unlock()
	interval := time.Duration(float64(time.Second) / perSecond)
	batch := 1
	if interval < 10*time.Millisecond {
		batch = int(10 * time.Millisecond / interval)
		interval = 10 * time.Millisecond
	}
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				m.mutate(batch)
			}
		}
	}()
}

// mutate makes n changes now: about 60% updates, 25% creates, 15% deletes.
func (m *mutator) mutate(n int) {
	sb := m.sb
	sb.store.mu.Lock()
	defer sb.store.mu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	for range n {
		t := mutatedTypes[m.rng.intn(len(mutatedTypes))]
		res, ok := sb.cat.ByType(t.typ)
		if !ok {
			continue
		}
		switch roll := m.rng.intn(100); {
		case roll < 60:
			m.update(res, t.attr)
		case roll < 85:
			m.create(res)
		default:
			if id, ok := m.randomLive(res.Type); ok {
				sb.deleteRecord(res, id)
			}
		}
		sb.stats.mutations.Add(1)
	}
}

func (m *mutator) randomLive(typ string) (int64, bool) {
	c := m.sb.store.cols[typ]
	if c.nextID <= 1 {
		return 0, false
	}
	for range 20 {
		id := int64(m.rng.intn(int(c.nextID-1))) + 1
		if m.sb.store.exists(typ, id) {
			return id, true
		}
	}
	return 0, false
}

func (m *mutator) update(res *catalog.Resource, name string) {
	id, ok := m.randomLive(res.Type)
	if !ok {
		return
	}
	i := res.AttributeIndex(name)
	if i < 0 {
		return
	}
	m.seq++
	m.sb.update(res, id, &change{attrs: map[int]any{i: fmt.Sprintf("%s (rev %d)", pick(&m.rng, jobTitles), m.seq)}})
}

// create copies the writable values of a freshly generated record.
func (m *mutator) create(res *catalog.Resource) {
	c := m.sb.store.cols[res.Type]
	if c.plan == nil {
		return
	}
	m.seq++
	model := c.plan.generate(int64(m.rng.intn(int(max(c.seeded, 1)))) + 1)
	ch := &change{attrs: map[int]any{}, rels: map[int]relRef{}}
	for i := range res.Attributes {
		if a := &res.Attributes[i]; !a.ReadOnly && model.attrs[i] != nil {
			ch.attrs[i] = model.attrs[i]
		}
	}
	for i := range res.Relationships {
		if r := &res.Relationships[i]; !r.ReadOnly && !r.ToMany && model.rels[i].id != 0 && m.sb.store.exists(model.rels[i].typ, model.rels[i].id) {
			ch.rels[i] = model.rels[i]
		}
	}
	if i := res.AttributeIndex("emails"); i >= 0 {
		ch.attrs[i] = []string{fmt.Sprintf("new.prospect.m%d.%d@sandbox.example", m.seq, m.rng.next()%1e6)}
	}
	m.sb.create(res, ch, 1, nil)
}
