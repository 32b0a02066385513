package connectiontest

import (
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

func TestMemStore(t *testing.T) {
	RunStore(t, func(*testing.T) connection.Store { return NewMemStore() })
}
