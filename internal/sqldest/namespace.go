package sqldest

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// Claim implements syncer.Claimer with the one row of _sync_owner.
func (s *Destination) Claim(ctx context.Context, o connection.Owner) error {
	if err := s.setup(ctx); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO `+s.table(ownerTable)+` (slot, org, credential_id, credential, connection, claimed_at)
		VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (slot) DO NOTHING`,
		o.Org, o.CredentialID, o.Credential, o.Connection, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	var held connection.Owner
	if err := s.db.QueryRowContext(ctx, `SELECT org, credential_id, credential, connection FROM `+s.table(ownerTable)+` WHERE slot = 1`).
		Scan(&held.Org, &held.CredentialID, &held.Credential, &held.Connection); err != nil {
		return err
	}
	if !held.Same(o) {
		return &connection.OwnedError{Namespace: s.ns, Where: s.where, Holder: held}
	}
	if held.Org == "" && o.Org != "" {
		_, err := s.db.ExecContext(ctx, `UPDATE `+s.table(ownerTable)+` SET org = $1 WHERE slot = 1 AND org = ''`, o.Org)
		return err
	}
	return nil
}

// ResetStreams implements syncer.Resetter: the streams' cursors become
// empty; their rows stay, and so does their row in _sync_state, which
// names their table.
func (s *Destination) ResetStreams(ctx context.Context, streams []string) error {
	if cols, err := s.columns(ctx, stateTable); err != nil || len(cols) == 0 {
		return err // nothing synced yet: nothing to forget
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UTC().Format(time.RFC3339)
	for _, st := range streams {
		if _, err := tx.ExecContext(ctx, `UPDATE `+s.table(stateTable)+` SET cursor = '', updated_at = $2 WHERE stream = $1`, st, now); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// DropNamespace implements syncer.Dropper. A namespace that is a schema is
// dropped whole; otherwise the tables of the streams named in _sync_state
// and the namespace's own tables are dropped, in one transaction. Other
// namespaces, and tables the destination did not make, stay.
func (s *Destination) DropNamespace(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready = false
	if s.ns != "" && s.d.Schemas {
		_, err := s.db.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+quote(s.ns)+` CASCADE`)
		return err
	}
	streams, err := s.streams(ctx)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, st := range append(streams, stateTable, locksTable, ownerTable) {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+s.table(st)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// streams lists the streams of _sync_state; none when it does not exist.
func (s *Destination) streams(ctx context.Context) ([]string, error) {
	cols, err := s.columns(ctx, stateTable)
	if err != nil || len(cols) == 0 {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT stream FROM `+s.table(stateTable)+` ORDER BY stream`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// Inspect implements syncer.Inspector: every stream of _sync_state, by
// name, with its cursor and live rows. It creates nothing.
func (s *Destination) Inspect(ctx context.Context) ([]connection.StreamInfo, error) {
	if cols, err := s.columns(ctx, stateTable); err != nil || len(cols) == 0 {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT stream, cursor FROM `+s.table(stateTable)+` ORDER BY stream`)
	if err != nil {
		return nil, err
	}
	var out []connection.StreamInfo
	for rows.Next() {
		var si connection.StreamInfo
		if err := rows.Scan(&si.Stream, &si.Cursor); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, si)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, si := range out {
		cols, err := s.columns(ctx, si.Stream)
		if err != nil {
			return nil, err
		}
		if len(cols) == 0 {
			continue // no table (yet)
		}
		q := `SELECT COUNT(*) FROM ` + s.table(si.Stream)
		if cols[connection.DeletedColumn] {
			q += ` WHERE ` + quote(connection.DeletedColumn) + ` IS NULL`
		}
		if err := s.db.QueryRowContext(ctx, q).Scan(&out[i].Rows); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
	}
	return out, nil
}

var (
	_ connection.Claimer   = (*Destination)(nil)
	_ connection.Resetter  = (*Destination)(nil)
	_ connection.Dropper   = (*Destination)(nil)
	_ connection.Inspector = (*Destination)(nil)
)
