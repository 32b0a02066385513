package service

import (
	"context"

	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// inspectDestination reads dst's streams through its optional Inspector.
// TODO(issue 9): use syncer.Inspector once the destinations land.
func inspectDestination(ctx context.Context, dst syncer.Destination) ([]streamInfo, bool, error) {
	return nil, false, nil
}
