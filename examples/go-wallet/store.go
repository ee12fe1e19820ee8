package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// clearingAccount is the gateway clearing account: the other side of every deposit and withdrawal entry.
const clearingAccount = "00000000-0000-0000-0000-00000000c1ea"

const schema = `
CREATE TABLE IF NOT EXISTS users (
  id uuid PRIMARY KEY,
  username text NOT NULL UNIQUE,
  password_hash bytea NOT NULL,
  pin_hash bytea NOT NULL,
  failed_logins int NOT NULL DEFAULT 0,
  login_locked_until timestamptz,
  failed_pins int NOT NULL DEFAULT 0,
  pin_locked_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS sessions (
  token_hash bytea PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users(id),
  expires_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
  id uuid PRIMARY KEY,
  user_id uuid REFERENCES users(id),
  kind text NOT NULL CHECK (kind IN ('user', 'clearing')),
  balance bigint NOT NULL DEFAULT 0,
  entry_count bigint NOT NULL DEFAULT 0,
  currency text NOT NULL DEFAULT 'CNY',
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen')),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CHECK (kind = 'clearing' OR balance >= 0));
CREATE TABLE IF NOT EXISTS transactions (
  id uuid PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'transfer')),
  status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  amount bigint NOT NULL CHECK (amount > 0),
  from_account_id uuid REFERENCES accounts(id),
  to_account_id uuid REFERENCES accounts(id),
  user_id uuid NOT NULL REFERENCES users(id),
  idempotency_key text NOT NULL,
  failure_code text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  committed_at timestamptz,
  UNIQUE (user_id, idempotency_key));
CREATE INDEX IF NOT EXISTS transactions_from ON transactions (from_account_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS transactions_to ON transactions (to_account_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS transactions_pending ON transactions (created_at) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS ledger_entries (
  id bigserial PRIMARY KEY,
  txn_id uuid NOT NULL REFERENCES transactions(id),
  account_id uuid NOT NULL REFERENCES accounts(id),
  amount bigint NOT NULL,
  seq bigint NOT NULL,
  balance_after bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  UNIQUE (account_id, seq));
CREATE INDEX IF NOT EXISTS ledger_entries_txn ON ledger_entries (txn_id);
CREATE TABLE IF NOT EXISTS idempotency_keys (
  user_id uuid NOT NULL,
  key text NOT NULL,
  request_hash text NOT NULL,
  state text NOT NULL CHECK (state IN ('in_progress', 'done')),
  problem jsonb,
  lease_until timestamptz NOT NULL,
  PRIMARY KEY (user_id, key));
INSERT INTO accounts (id, kind) VALUES ('` + clearingAccount + `', 'clearing') ON CONFLICT DO NOTHING;
`

type store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	// commitTimestamps: the server tracks commit times (track_commit_timestamp = on), so the export's
	// committed_ts is the real commit time of a transaction's final state, pg_xact_commit_timestamp(xmin).
	// Otherwise committed_at is written right after the COMMIT returned (an upper bound; NULL if the
	// process died in between, i.e. no evidence).
	commitTimestamps bool
}

func openStore(ctx context.Context, cfg Config) (*store, error) {
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pc.MaxConns = int32(cfg.PoolSize)
	pc.ConnConfig.ConnectTimeout = cfg.DBTimeout
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	return &store{pool: pool, timeout: cfg.DBTimeout}, nil
}

// migrate creates the schema under an advisory lock (two wallets starting on one DB do not race).
func (s *store) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(7140001)"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
}

func (s *store) detectCommitTimestamps(ctx context.Context) {
	var on bool
	err := s.pool.QueryRow(ctx, `SELECT current_setting('track_commit_timestamp') = 'on'`).Scan(&on)
	s.commitTimestamps = err == nil && on
}

// noteCommitted records, best effort and after the fact, that a transaction's final state committed.
func (s *store) noteCommitted(ctx context.Context, txnID string) {
	if s.commitTimestamps {
		return // the export reads the commit time from the server; an update here would move xmin
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	_, _ = s.pool.Exec(ctx, `UPDATE transactions SET committed_at = clock_timestamp() WHERE id = $1 AND committed_at IS NULL`, txnID)
}

// committedExpr is the export's expression for a transaction row's commit time.
func (s *store) committedExpr() string {
	if s.commitTimestamps {
		return `CASE WHEN t.status <> 'pending' THEN coalesce(pg_xact_commit_timestamp(t.xmin), t.committed_at) END`
	}
	return `CASE WHEN t.status <> 'pending' THEN t.committed_at END`
}

// dbUnavailable is what any DB failure outside a commit becomes: nothing was applied.
func dbUnavailable(err error) *Problem {
	return problem("DATABASE_UNAVAILABLE", "The database is unavailable or too slow; nothing was applied.").retryAfter(1)
}

// commitInDoubt: the COMMIT was sent but its outcome never came back.
func commitInDoubt() *Problem {
	return problem("GATEWAY_TIMEOUT", "The database did not confirm the commit, so its outcome is unknown; "+
		"retry with the same Idempotency-Key to learn it.").retryAfter(1)
}

// inTx runs fn in one read-write transaction with the DB timeout. A *Problem returned by fn is a
// refusal: by default the transaction rolls back; fn may ask to commit its side effects with the refusal
// (a PIN failure counter, a recorded idempotent refusal) by returning commitRefusal{p}.
func (s *store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.tx(ctx, pgx.TxOptions{}, fn)
}

func (s *store) readTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.tx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

type commitRefusal struct{ p *Problem }

func (c commitRefusal) Error() string { return c.p.Error() }

func (s *store) tx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return dbUnavailable(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	ferr := fn(tx)
	var refusal commitRefusal
	var p *Problem
	switch {
	case errors.As(ferr, &refusal):
		// commit the side effects, then answer the refusal
	case errors.As(ferr, &p):
		return p
	case errors.Is(ferr, pgx.ErrNoRows):
		return ferr
	case ferr != nil:
		return classify(ferr)
	}
	st := stateFromCtx(ctx)
	readWrite := opts.AccessMode != pgx.ReadOnly
	if st != nil && readWrite {
		st.commitInFlight.Store(true)
	}
	err = tx.Commit(ctx)
	if st != nil && readWrite {
		st.commitInFlight.Store(false)
	}
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "23") || strings.HasPrefix(pgErr.Code, "40")) {
			return dbUnavailable(err) // the server refused the commit (constraint, serialization): rolled back
		}
		if readWrite {
			return commitInDoubt()
		}
		return dbUnavailable(err)
	}
	if st != nil && readWrite {
		st.committed.Store(true)
	}
	if refusal.p != nil {
		return refusal.p
	}
	return nil
}

// classify maps an error from inside a transaction (before COMMIT): nothing was applied.
func classify(err error) error {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return dbUnavailable(err)
}

func (s *store) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.pool.Exec(ctx, "SELECT 1")
	return err
}

// postEntries writes ledger entries and moves balances; accounts must already be locked FOR UPDATE.
func postEntries(ctx context.Context, tx pgx.Tx, txnID string, legs [][2]any) error {
	for _, leg := range legs {
		account, amount := leg[0].(string), leg[1].(int64)
		_, err := tx.Exec(ctx, `WITH a AS (
		    UPDATE accounts SET balance = balance + $3, entry_count = entry_count + 1 WHERE id = $2
		    RETURNING balance, entry_count)
		  INSERT INTO ledger_entries (txn_id, account_id, amount, seq, balance_after)
		  SELECT $1, $2, $3, a.entry_count, a.balance FROM a`, txnID, account, amount)
		if err != nil {
			return err
		}
	}
	return nil
}

type lockedAccount struct {
	ID      string
	UserID  *string
	Kind    string
	Balance int64
	Status  string
}

// lockAccounts takes row locks in ascending id order (a fixed order: no deadlocks between transfers).
func lockAccounts(ctx context.Context, tx pgx.Tx, ids ...string) (map[string]lockedAccount, error) {
	rows, err := tx.Query(ctx, `SELECT id::text, user_id::text, kind, balance, status FROM accounts
	  WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return nil, err
	}
	out := map[string]lockedAccount{}
	for rows.Next() {
		var a lockedAccount
		if err := rows.Scan(&a.ID, &a.UserID, &a.Kind, &a.Balance, &a.Status); err != nil {
			return nil, err
		}
		out[a.ID] = a
	}
	return out, rows.Err()
}
