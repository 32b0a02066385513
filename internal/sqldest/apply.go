package sqldest

import (
	"context"
	"fmt"
	"strings"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// Apply implements connection.Applier with one conditional upsert, so two
// deliveries about one record racing each other, or a delivery racing a
// sync's page, leave the newest version whichever commits last:
//
//   - created, updated: INSERT the carried columns; on an existing id
//     UPDATE them only WHERE the row is not marked deleted and its cursor
//     value (updatedAt) is not newer than the event's;
//   - destroyed: INSERT the last known values marked deleted; on an
//     existing id set only the deleted column, WHERE it is not set yet.
//
// An event without a cursor value (an update that did not move updatedAt)
// is applied unless the row is deleted.
func (s *Destination) Apply(ctx context.Context, st *connection.Stream, ev connection.Event) (connection.Applied, error) {
	if len(ev.Set) != len(st.Columns) || len(ev.Record.Values) != len(st.Columns) || len(st.Columns) == 0 || st.Columns[0].Name != "id" {
		return "", fmt.Errorf("apply %s %d: the event does not match the stream's columns", st.Name, ev.Record.ID)
	}
	rec := st.Clean(ev.Record)
	rec.Values[0] = ev.Record.ID
	var names []string
	var args []any
	deleted := -1
	for i, c := range st.Columns {
		switch {
		case c.Name == connection.DeletedColumn:
			deleted = i
			continue
		case i == 0, ev.Set[i]:
			names = append(names, quote(c.Name))
			args = append(args, rec.Values[i])
		}
	}
	if deleted < 0 {
		return "", fmt.Errorf("apply %s: the stream has no %s column", st.Name, connection.DeletedColumn)
	}
	del := quote(connection.DeletedColumn)
	var tail string
	switch ev.Kind {
	case connection.Destroyed:
		if ev.At == "" {
			return "", fmt.Errorf("apply %s %d: a destroyed event needs its time", st.Name, ev.Record.ID)
		}
		names = append(names, del)
		args = append(args, ev.At)
		tail = ` ON CONFLICT (id) DO UPDATE SET ` + del + ` = excluded.` + del + ` WHERE t.` + del + ` IS NULL`
	case connection.Created, connection.Updated:
		var sets []string
		for _, n := range names[1:] {
			sets = append(sets, n+" = excluded."+n)
		}
		if len(sets) == 0 {
			tail = ` ON CONFLICT (id) DO NOTHING`
			break
		}
		where := `t.` + del + ` IS NULL`
		if cf := st.CursorField; cf != "" {
			if _, ok := st.Column(cf); ok {
				c := quote(cf)
				where += ` AND (excluded.` + c + ` IS NULL OR t.` + c + ` IS NULL OR t.` + c + ` <= excluded.` + c + `)`
			}
		}
		tail = ` ON CONFLICT (id) DO UPDATE SET ` + strings.Join(sets, ", ") + ` WHERE ` + where
	default:
		return "", fmt.Errorf("apply %s %d: unknown event kind %q", st.Name, ev.Record.ID, ev.Kind)
	}
	ph := make([]string, len(args))
	for i := range args {
		ph[i] = s.placeholder(i + 1)
	}
	q := `INSERT INTO ` + s.table(st.Name) + ` AS t (` + strings.Join(names, ", ") + `) VALUES (` + strings.Join(ph, ", ") + `)` + tail
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return "", fmt.Errorf("apply %s %d: %w", st.Name, ev.Record.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return "", err
	}
	if n == 0 {
		return connection.Stale, nil
	}
	return connection.Written, nil
}

var _ connection.Applier = (*Destination)(nil)
