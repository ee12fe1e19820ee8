package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Transaction is the contract's transaction object.
type Transaction struct {
	ID             string    `json:"transaction_id"`
	Kind           string    `json:"kind"`
	Status         string    `json:"status"`
	Amount         int64     `json:"amount"`
	From           *string   `json:"from_account_id"`
	To             *string   `json:"to_account_id"`
	IdempotencyKey string    `json:"idempotency_key"`
	CreatedAt      time.Time `json:"created_at"`
	FailureCode    *string   `json:"failure_code"`
}

const txnColumns = `id::text, kind, status, amount, from_account_id::text, to_account_id::text, idempotency_key,
  created_at, failure_code`

func scanTxn(row pgx.Row) (Transaction, error) {
	var t Transaction
	err := row.Scan(&t.ID, &t.Kind, &t.Status, &t.Amount, &t.From, &t.To, &t.IdempotencyKey, &t.CreatedAt, &t.FailureCode)
	return t, err
}

// idemKey identifies one money request: who, under which key, asking what (hash of operation + body).
type idemKey struct {
	userID string
	key    string
	hash   string
}

func newIdemKey(userID, key, operation string, body any) idemKey {
	canonical, _ := json.Marshal(map[string]any{"operation": operation, "body": body})
	sum := sha256.Sum256(canonical)
	return idemKey{userID: userID, key: key, hash: hex.EncodeToString(sum[:])}
}

// recordedRefusals are final for a key and replayed identically; anything else (DB down, deadline)
// leaves the key retryable.
var recordedRefusals = map[string]bool{"ACCOUNT_NOT_FOUND": true, "ACCOUNT_FROZEN": true,
	"INSUFFICIENT_FUNDS": true, "INVALID_PIN": true, "ACCOUNT_LOCKED": true}

type storedProblem struct {
	Code   string         `json:"code"`
	Detail string         `json:"detail"`
	Extra  map[string]any `json:"extra,omitempty"`
}

// claim takes the key inside the caller's transaction. It returns (nil, nil) to go ahead, the earlier
// transaction to replay, or a problem (key reused, in progress, or the recorded refusal). A concurrent
// duplicate blocks on the primary key until the first transaction ends. `state` is 'done' when the
// whole outcome commits in this very transaction (a transfer), else 'in_progress' with a lease.
func (m *money) claim(ctx context.Context, tx pgx.Tx, k idemKey, state string) (*Transaction, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (user_id, key, request_hash, state, lease_until)
	  VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) ON CONFLICT DO NOTHING`,
		k.userID, k.key, k.hash, state, m.lease.Seconds())
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 1 {
		return nil, nil
	}
	var (
		hash, current string
		stored        []byte
		leased        bool
	)
	if err := tx.QueryRow(ctx, `SELECT request_hash, state, problem, lease_until > now() FROM idempotency_keys
	  WHERE user_id = $1 AND key = $2 FOR UPDATE`, k.userID, k.key).Scan(&hash, &current, &stored, &leased); err != nil {
		return nil, err
	}
	if hash != k.hash {
		return nil, problem("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used for a different request.")
	}
	if current == "in_progress" && leased {
		return nil, problem("REQUEST_IN_PROGRESS", "A request with this Idempotency-Key is still being processed; retry later.")
	}
	t, err := scanTxn(tx.QueryRow(ctx, `SELECT `+txnColumns+` FROM transactions WHERE user_id = $1 AND idempotency_key = $2`,
		k.userID, k.key))
	if err == nil {
		return &t, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if current == "done" && stored != nil {
		var sp storedProblem
		if json.Unmarshal(stored, &sp) == nil {
			return nil, &Problem{Code: sp.Code, Detail: sp.Detail, Extra: sp.Extra}
		}
	}
	// the first request died before deciding anything: take the key over
	_, err = tx.Exec(ctx, `UPDATE idempotency_keys SET state = $3, lease_until = now() + make_interval(secs => $4)
	  WHERE user_id = $1 AND key = $2`, k.userID, k.key, state, m.lease.Seconds())
	return nil, err
}

// refuse records a final refusal on the key in the caller's transaction and asks inTx to commit it.
func refuse(ctx context.Context, tx pgx.Tx, k idemKey, p *Problem) error {
	if !recordedRefusals[p.Code] {
		return p
	}
	raw, _ := json.Marshal(storedProblem{Code: p.Code, Detail: p.Detail, Extra: p.Extra})
	if _, err := tx.Exec(ctx, `UPDATE idempotency_keys SET state = 'done', problem = $3 WHERE user_id = $1 AND key = $2`,
		k.userID, k.key, raw); err != nil {
		return err
	}
	return commitRefusal{p}
}

func markDone(ctx context.Context, tx pgx.Tx, k idemKey) error {
	_, err := tx.Exec(ctx, `UPDATE idempotency_keys SET state = 'done' WHERE user_id = $1 AND key = $2`, k.userID, k.key)
	return err
}

type money struct {
	db      *store
	auth    *auth
	gateway gateway
	metrics *metrics
	lease   time.Duration
}

func accountNotFound() *Problem { return problem("ACCOUNT_NOT_FOUND", "No such account.") }

func insertTxn(ctx context.Context, tx pgx.Tx, kind, status string, amount int64, from, to *string, k idemKey) (Transaction, error) {
	return scanTxn(tx.QueryRow(ctx, `INSERT INTO transactions (id, kind, status, amount, from_account_id, to_account_id,
	    user_id, idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	  RETURNING `+txnColumns, uuid.NewString(), kind, status, amount, from, to, k.userID, k.key))
}

// transfer: one DB transaction — claim the key, lock both accounts in id order, check, post two entries.
func (m *money) transfer(ctx context.Context, k idemKey, from, to string, amount int64, pin string) (Transaction, error) {
	check, err := m.auth.verifyPin(ctx, k.userID, pin)
	if err != nil {
		return Transaction{}, err
	}
	var out Transaction
	err = m.db.inTx(ctx, func(tx pgx.Tx) error {
		replay, err := m.claim(ctx, tx, k, "done")
		if err != nil || replay != nil {
			if replay != nil {
				out = *replay
			}
			return err
		}
		accounts, err := lockAccounts(ctx, tx, from, to)
		if err != nil {
			return err
		}
		src, okSrc := accounts[from]
		dst, okDst := accounts[to]
		if !okSrc || src.UserID == nil || *src.UserID != k.userID || !okDst || dst.Kind != "user" {
			return refuse(ctx, tx, k, accountNotFound())
		}
		if p, err := m.auth.settlePin(ctx, tx, k.userID, check); err != nil || p != nil {
			if err != nil {
				return err
			}
			return refuse(ctx, tx, k, p)
		}
		for _, a := range []lockedAccount{src, dst} {
			if a.Status == "frozen" {
				return refuse(ctx, tx, k, problem("ACCOUNT_FROZEN", "Account "+a.ID+" is frozen by risk control."))
			}
		}
		if src.Balance < amount {
			return refuse(ctx, tx, k, problem("INSUFFICIENT_FUNDS", "The balance is below the amount."))
		}
		out, err = insertTxn(ctx, tx, "transfer", "succeeded", amount, &from, &to, k)
		if err != nil {
			return err
		}
		return postEntries(ctx, tx, out.ID, [][2]any{{from, -amount}, {to, amount}})
	})
	if err == nil && out.Status == "succeeded" {
		m.db.noteCommitted(ctx, out.ID)
	}
	return out, err
}

// deposit: open a pending transaction (key claimed in the same commit), then charge the gateway.
func (m *money) deposit(ctx context.Context, k idemKey, account string, amount int64) (Transaction, error) {
	var out Transaction
	replayed := false
	err := m.db.inTx(ctx, func(tx pgx.Tx) error {
		replay, err := m.claim(ctx, tx, k, "in_progress")
		if err != nil || replay != nil {
			if replay != nil {
				out, replayed = *replay, true
			}
			return err
		}
		accounts, err := lockAccounts(ctx, tx, account)
		if err != nil {
			return err
		}
		a, ok := accounts[account]
		if !ok || a.UserID == nil || *a.UserID != k.userID {
			return refuse(ctx, tx, k, accountNotFound())
		}
		if a.Status == "frozen" {
			return refuse(ctx, tx, k, problem("ACCOUNT_FROZEN", "Account "+a.ID+" is frozen by risk control."))
		}
		out, err = insertTxn(ctx, tx, "deposit", "pending", amount, nil, &account, k)
		return err
	})
	if err != nil || replayed {
		return out, err
	}
	return m.settleThroughGateway(ctx, k, out)
}

// withdraw: hold the funds (user −amount, clearing +amount) with a pending transaction, then pay out.
func (m *money) withdraw(ctx context.Context, k idemKey, account string, amount int64, pin string) (Transaction, error) {
	check, err := m.auth.verifyPin(ctx, k.userID, pin)
	if err != nil {
		return Transaction{}, err
	}
	var out Transaction
	replayed := false
	err = m.db.inTx(ctx, func(tx pgx.Tx) error {
		replay, err := m.claim(ctx, tx, k, "in_progress")
		if err != nil || replay != nil {
			if replay != nil {
				out, replayed = *replay, true
			}
			return err
		}
		accounts, err := lockAccounts(ctx, tx, account, clearingAccount)
		if err != nil {
			return err
		}
		a, ok := accounts[account]
		if !ok || a.UserID == nil || *a.UserID != k.userID {
			return refuse(ctx, tx, k, accountNotFound())
		}
		if p, err := m.auth.settlePin(ctx, tx, k.userID, check); err != nil || p != nil {
			if err != nil {
				return err
			}
			return refuse(ctx, tx, k, p)
		}
		if a.Status == "frozen" {
			return refuse(ctx, tx, k, problem("ACCOUNT_FROZEN", "Account "+a.ID+" is frozen by risk control."))
		}
		if a.Balance < amount {
			return refuse(ctx, tx, k, problem("INSUFFICIENT_FUNDS", "The balance is below the amount."))
		}
		out, err = insertTxn(ctx, tx, "withdrawal", "pending", amount, &account, nil, k)
		if err != nil {
			return err
		}
		return postEntries(ctx, tx, out.ID, [][2]any{{account, -amount}, {clearingAccount, amount}})
	})
	if err != nil || replayed {
		return out, err
	}
	return m.settleThroughGateway(ctx, k, out)
}

// settleThroughGateway asks the gateway (reference = transaction id) and applies a definite answer; an
// unknown one leaves the transaction pending and answers GATEWAY_TIMEOUT with its id.
func (m *money) settleThroughGateway(ctx context.Context, k idemKey, t Transaction) (Transaction, error) {
	if st := stateFromCtx(ctx); st != nil {
		st.pendingTxn.Store(t.ID)
	}
	res := m.gateway.submit(ctx, gatewayOperation(t.Kind), t.ID, t.Amount)
	m.metrics.gatewayCalls.WithLabelValues(gatewayOperation(t.Kind), res.outcome).Inc()
	if res.outcome == outcomeUnknown {
		m.finishKey(ctx, k)
		return t, gatewayUnknown(t.ID, res.detail)
	}
	// recorded even if the request's deadline strikes meanwhile (the client is then told 504, unknown):
	// a definite gateway answer should not wait for reconcile
	settled, err := m.applyOutcome(context.WithoutCancel(ctx), t.ID, res.outcome == outcomeSucceeded, &k)
	if err != nil {
		return t, gatewayUnknown(t.ID, "the outcome could not be recorded")
	}
	if settled.Status == "failed" {
		return settled, gatewayFailed(settled.ID, res.detail)
	}
	return settled, nil
}

func gatewayFailed(txnID, detail string) *Problem {
	return problem("GATEWAY_ERROR", "The payment gateway refused or failed ("+detail+"); nothing was applied.").
		with("transaction_id", txnID)
}

// finishKey, best effort: duplicates then replay the pending transaction at once instead of waiting.
func (m *money) finishKey(ctx context.Context, k idemKey) {
	ctx = context.WithoutCancel(ctx) // also after the deadline: it only spares duplicates a wait
	_ = m.db.inTx(ctx, func(tx pgx.Tx) error { return markDone(ctx, tx, k) })
}

// applyOutcome applies a definite gateway outcome to a pending transaction exactly once (row lock +
// status check), from the request itself or from reconcile.
func (m *money) applyOutcome(ctx context.Context, txnID string, succeeded bool, k *idemKey) (Transaction, error) {
	var out Transaction
	settledNow := false
	err := m.db.inTx(ctx, func(tx pgx.Tx) error {
		if k != nil {
			if err := markDone(ctx, tx, *k); err != nil {
				return err
			}
		}
		t, err := scanTxn(tx.QueryRow(ctx, `SELECT `+txnColumns+` FROM transactions WHERE id = $1 FOR UPDATE`, txnID))
		if err != nil {
			return err
		}
		out = t
		if t.Status != "pending" {
			return nil
		}
		var user string
		if t.Kind == "deposit" {
			user = *t.To
		} else {
			user = *t.From
		}
		if _, err := lockAccounts(ctx, tx, user, clearingAccount); err != nil {
			return err
		}
		status := "failed"
		switch {
		case succeeded && t.Kind == "deposit":
			err = postEntries(ctx, tx, t.ID, [][2]any{{user, t.Amount}, {clearingAccount, -t.Amount}})
			status = "succeeded"
		case succeeded:
			status = "succeeded" // the hold becomes the payout
		case t.Kind == "withdrawal":
			err = postEntries(ctx, tx, t.ID, [][2]any{{user, t.Amount}, {clearingAccount, -t.Amount}}) // reverse the hold
		}
		if err != nil {
			return err
		}
		var failure *string
		if status == "failed" {
			code := "GATEWAY_ERROR"
			failure = &code
		}
		out, err = scanTxn(tx.QueryRow(ctx, `UPDATE transactions SET status = $2, failure_code = $3
		    WHERE id = $1 RETURNING `+txnColumns, t.ID, status, failure))
		settledNow = true
		return err
	})
	if err == nil && settledNow {
		m.db.noteCommitted(ctx, out.ID)
		m.metrics.settled.WithLabelValues(out.Kind, out.Status).Inc()
	}
	return out, err
}

func gatewayOperation(kind string) string {
	if kind == "deposit" {
		return "charges"
	}
	return "payouts"
}
