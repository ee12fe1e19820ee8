package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// admin: the contract's admin endpoints plus the harness-facing export (docs/target-contract.md).
type admin struct {
	api         *api
	maintenance *maintenance
	reconcileMu sync.Mutex
}

func (ad *admin) guard(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !ad.api.auth.isAdmin(r) {
			writeProblem(w, r, problem("UNAUTHENTICATED", "The admin token is required."))
			return
		}
		next(w, r)
	}
}

func (ad *admin) setMaintenance(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Enabled    *bool `json:"enabled"`
		RetryAfter *int  `json:"retry_after_s"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Enabled == nil {
		fail(w, r, invalid("body must be {enabled: bool, retry_after_s: int}"))
		return
	}
	after := 30
	if in.RetryAfter != nil {
		after = *in.RetryAfter
	}
	if after < 0 || after > 86400 {
		fail(w, r, invalid("retry_after_s must be between 0 and 86400"))
		return
	}
	ad.maintenance.set(*in.Enabled, after)
	writeJSON(w, http.StatusOK, map[string]any{"enabled": *in.Enabled, "retry_after_s": after})
}

func (ad *admin) setStatus(status string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			fail(w, r, accountNotFound())
			return
		}
		var out struct {
			ID     string `json:"account_id"`
			Status string `json:"status"`
		}
		err = ad.api.db.inTx(r.Context(), func(tx pgx.Tx) error {
			return tx.QueryRow(r.Context(), `UPDATE accounts SET status = $2 WHERE id = $1 AND kind = 'user'
			  RETURNING id::text, status`, id, status).Scan(&out.ID, &out.Status)
		})
		if errors.Is(err, pgx.ErrNoRows) {
			err = accountNotFound()
		}
		if err != nil {
			fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// reconcile settles pending transactions by asking the gateway, never by guessing. A record at the
// gateway is the outcome; no record means it never applied it *yet*, so it is re-driven under the same
// reference (the gateway is idempotent per reference). Only a gateway record is final here: a 5xx on
// re-drive applied nothing now, but the original request may still be travelling.
func (ad *admin) reconcile(w http.ResponseWriter, r *http.Request) {
	ad.reconcileMu.Lock()
	defer ad.reconcileMu.Unlock()
	ctx := r.Context()
	type pendingTxn struct {
		id, kind string
		amount   int64
	}
	var pending []pendingTxn
	err := ad.api.db.readTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id::text, kind, amount FROM transactions WHERE status = 'pending'
		  ORDER BY created_at LIMIT 500`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p pendingTxn
			if err := rows.Scan(&p.id, &p.kind, &p.amount); err != nil {
				return err
			}
			pending = append(pending, p)
		}
		return rows.Err()
	})
	if err != nil {
		fail(w, r, err)
		return
	}
	m := ad.api.money
	var resolved int
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, p := range pending {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			op := gatewayOperation(p.kind)
			res := m.gateway.lookup(ctx, op, p.id)
			if res.outcome == outcomeNotFound {
				res = m.gateway.submit(ctx, op, p.id, p.amount)
			}
			if res.outcome != outcomeSucceeded && res.outcome != outcomeDeclined {
				return
			}
			t, err := m.applyOutcome(ctx, p.id, res.outcome == outcomeSucceeded, nil)
			if err == nil && t.Status != "pending" {
				m.metrics.reconciled.WithLabelValues(t.Status).Inc()
				mu.Lock()
				resolved++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var still int
	err = ad.api.db.readTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM transactions WHERE status = 'pending'`).Scan(&still)
	})
	if err != nil {
		fail(w, r, err)
		return
	}
	logger.Info("reconcile", "request_id", requestIDOf(r), "examined", len(pending), "resolved", resolved, "still_pending", still)
	writeJSON(w, http.StatusOK, map[string]int{"resolved": resolved, "still_pending": still})
}

type auditOut struct {
	Accounts               int      `json:"accounts"`
	TotalBalance           int64    `json:"total_balance"`
	LedgerTotal            int64    `json:"ledger_total"`
	ExternalIn             int64    `json:"external_in"`
	ExternalOut            int64    `json:"external_out"`
	PendingCount           int      `json:"pending_count"`
	NegativeAccounts       []string `json:"negative_accounts"`
	MismatchedAccounts     []string `json:"mismatched_accounts"`
	UnbalancedTransactions []string `json:"unbalanced_transactions"`
	ClearingBalance        int64    `json:"clearing_balance"`
	PendingWithdrawalHolds int64    `json:"pending_withdrawal_holds"`
}

func ids(ctx context.Context, tx pgx.Tx, query string) ([]string, error) {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if out == nil {
		out = []string{}
	}
	return out, err
}

// audit reads everything in the caller's REPEATABLE READ snapshot, so its sums agree with each other.
func audit(ctx context.Context, tx pgx.Tx) (auditOut, error) {
	var a auditOut
	err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 'user'),
	    coalesce(sum(balance) FILTER (WHERE kind = 'user'), 0)::bigint,
	    coalesce(sum(balance) FILTER (WHERE kind = 'clearing'), 0)::bigint FROM accounts`).
		Scan(&a.Accounts, &a.TotalBalance, &a.ClearingBalance)
	if err != nil {
		return a, err
	}
	if err = tx.QueryRow(ctx, `SELECT coalesce(sum(e.amount), 0)::bigint FROM ledger_entries e
	    JOIN accounts a ON a.id = e.account_id WHERE a.kind = 'user'`).Scan(&a.LedgerTotal); err != nil {
		return a, err
	}
	if err = tx.QueryRow(ctx, `SELECT
	    coalesce(sum(amount) FILTER (WHERE kind = 'deposit' AND status = 'succeeded'), 0)::bigint,
	    coalesce(sum(amount) FILTER (WHERE kind = 'withdrawal' AND status = 'succeeded'), 0)::bigint,
	    coalesce(sum(amount) FILTER (WHERE kind = 'withdrawal' AND status = 'pending'), 0)::bigint,
	    count(*) FILTER (WHERE status = 'pending') FROM transactions`).
		Scan(&a.ExternalIn, &a.ExternalOut, &a.PendingWithdrawalHolds, &a.PendingCount); err != nil {
		return a, err
	}
	if a.NegativeAccounts, err = ids(ctx, tx, `SELECT id::text FROM accounts WHERE kind = 'user' AND balance < 0 ORDER BY id`); err != nil {
		return a, err
	}
	if a.MismatchedAccounts, err = ids(ctx, tx, `SELECT a.id::text FROM accounts a
	    LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) e ON e.account_id = a.id
	    WHERE a.balance <> coalesce(e.total, 0) ORDER BY a.id`); err != nil {
		return a, err
	}
	// entries not summing to zero, or a succeeded transaction that moved no money at all
	a.UnbalancedTransactions, err = ids(ctx, tx, `SELECT t.id::text FROM transactions t
	    LEFT JOIN (SELECT txn_id, sum(amount) AS total, count(*) AS n FROM ledger_entries GROUP BY txn_id) e ON e.txn_id = t.id
	    WHERE coalesce(e.total, 0) <> 0 OR (t.status = 'succeeded' AND coalesce(e.n, 0) = 0) ORDER BY t.id`)
	return a, err
}

func (ad *admin) audit(w http.ResponseWriter, r *http.Request) {
	var out auditOut
	err := ad.api.db.readTx(r.Context(), func(tx pgx.Tx) error {
		var err error
		out, err = audit(r.Context(), tx)
		return err
	})
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func epoch(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

type exportTxn struct {
	Transaction
	UserID      string   `json:"user_id"`
	EntriesSum  int64    `json:"entries_sum"`
	CreatedTS   float64  `json:"created_ts"`
	CommittedTS *float64 `json:"committed_ts"`
}

type exportAccount struct {
	ID       string `json:"account_id"`
	UserID   string `json:"user_id"`
	Username string `json:"username"`
	Balance  int64  `json:"balance"`
	Status   string `json:"status"`
}

type exportEntry struct {
	ID           int64   `json:"entry_id"`
	AccountID    string  `json:"account_id"`
	TxnID        string  `json:"txn_id"`
	Amount       int64   `json:"amount"`
	Seq          int64   `json:"seq"`
	BalanceAfter int64   `json:"balance_after"`
	CreatedAt    float64 `json:"created_at"`
}

// export: accounts, transactions, user-account ledger entries and the audit, in ONE snapshot.
func (ad *admin) export(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	out := struct {
		Accounts     []exportAccount `json:"accounts"`
		Transactions []exportTxn     `json:"transactions"`
		Entries      []exportEntry   `json:"entries"`
		Audit        auditOut        `json:"audit"`
	}{Accounts: []exportAccount{}, Transactions: []exportTxn{}, Entries: []exportEntry{}}
	err := ad.api.db.readTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT a.id::text, a.user_id::text, u.username, a.balance, a.status FROM accounts a
		  JOIN users u ON u.id = a.user_id WHERE a.kind = 'user' ORDER BY a.created_at, a.id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var a exportAccount
			if err := rows.Scan(&a.ID, &a.UserID, &a.Username, &a.Balance, &a.Status); err != nil {
				return err
			}
			out.Accounts = append(out.Accounts, a)
		}
		if rows.Err() != nil {
			return rows.Err()
		}
		rows, err = tx.Query(ctx, `SELECT `+txnColumns+`, user_id::text, `+ad.api.db.committedExpr()+`,
		    coalesce((SELECT sum(e.amount) FROM ledger_entries e WHERE e.txn_id = t.id), 0)::bigint
		  FROM transactions t ORDER BY created_at, id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var t exportTxn
			var committed *time.Time
			if err := rows.Scan(&t.ID, &t.Kind, &t.Status, &t.Amount, &t.From, &t.To, &t.IdempotencyKey,
				&t.CreatedAt, &t.FailureCode, &t.UserID, &committed, &t.EntriesSum); err != nil {
				return err
			}
			t.CreatedTS = epoch(t.CreatedAt)
			if committed != nil {
				c := epoch(*committed)
				t.CommittedTS = &c
			}
			out.Transactions = append(out.Transactions, t)
		}
		if rows.Err() != nil {
			return rows.Err()
		}
		rows, err = tx.Query(ctx, `SELECT e.id, e.account_id::text, e.txn_id::text, e.amount, e.seq, e.balance_after,
		    e.created_at FROM ledger_entries e JOIN accounts a ON a.id = e.account_id WHERE a.kind = 'user'
		  ORDER BY e.account_id, e.seq`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var e exportEntry
			var created time.Time
			if err := rows.Scan(&e.ID, &e.AccountID, &e.TxnID, &e.Amount, &e.Seq, &e.BalanceAfter, &created); err != nil {
				return err
			}
			e.CreatedAt = epoch(created)
			out.Entries = append(out.Entries, e)
		}
		if rows.Err() != nil {
			return rows.Err()
		}
		out.Audit, err = audit(ctx, tx)
		return err
	})
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
