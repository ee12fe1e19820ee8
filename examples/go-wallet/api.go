package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const maxAmount = 1_000_000_000_000 // minor units; larger is a client error

var (
	usernamePattern = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)
	pinPattern      = regexp.MustCompile(`^[0-9]{6}$`)
	keyPattern      = regexp.MustCompile(`^[\x20-\x7e]{1,128}$`)
)

type api struct {
	auth  *auth
	money *money
	db    *store
}

// fail answers any error as a problem; a non-problem error here is a bug (INTERNAL_ERROR, logged).
func fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *Problem
	if errors.As(err, &p) {
		writeProblem(w, r, p)
		return
	}
	logger.Error("unexpected error", "request_id", requestIDOf(r), "error", err.Error())
	writeProblem(w, r, problem("INTERNAL_ERROR", "An unexpected error occurred."))
}

func invalid(format string, args ...any) *Problem {
	return problem("VALIDATION_ERROR", "The request is not valid: "+fmt.Sprintf(format, args...))
}

// body is a strictly typed JSON object: a field is read only if present with exactly the right type.
type body map[string]json.RawMessage

func decodeBody(r *http.Request) (body, error) {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.UseNumber()
	var b body
	if err := dec.Decode(&b); err != nil || b == nil {
		return nil, invalid("the body must be a JSON object")
	}
	return b, nil
}

func (b body) str(name string, pattern *regexp.Regexp, maxLen int) (string, error) {
	raw, ok := b[name]
	if !ok {
		return "", invalid("%s is required", name)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", invalid("%s must be a string", name)
	}
	if s == "" || len(s) > maxLen || (pattern != nil && !pattern.MatchString(s)) {
		return "", invalid("%s is not valid", name)
	}
	return s, nil
}

func (b body) amount() (int64, error) {
	raw, ok := b["amount"]
	if !ok {
		return 0, invalid("amount is required")
	}
	t := bytes.TrimSpace(raw)
	for _, c := range t {
		if (c < '0' || c > '9') && c != '-' {
			return 0, invalid("amount must be an integer number of minor units")
		}
	}
	n, err := strconv.ParseInt(string(t), 10, 64)
	if err != nil || n <= 0 || n > maxAmount {
		return 0, invalid("amount must be between 1 and %d", int64(maxAmount))
	}
	return n, nil
}

func (b body) accountID(name string) (string, error) {
	s, err := b.str(name, nil, 64)
	if err != nil {
		return "", err
	}
	id, perr := uuid.Parse(s)
	if perr != nil {
		return "", accountNotFound()
	}
	return id.String(), nil
}

func (a *api) register(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	username, err := b.str("username", usernamePattern, 64)
	if err != nil {
		fail(w, r, err)
		return
	}
	password, err := b.str("password", nil, 128)
	if err != nil {
		fail(w, r, err)
		return
	}
	pin, err := b.str("pin", pinPattern, 6)
	if err != nil {
		fail(w, r, err)
		return
	}
	userID, accountID, err := a.auth.register(r.Context(), username, password, pin)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"user_id": userID, "account_id": accountID})
}

func (a *api) login(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	username, err := b.str("username", nil, 64)
	if err != nil {
		fail(w, r, err)
		return
	}
	password, err := b.str("password", nil, 128)
	if err != nil {
		fail(w, r, err)
		return
	}
	token, expires, err := a.auth.login(r.Context(), username, password)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "expires_at": expires.Format(time.RFC3339Nano)})
}

// user authenticates the request; on failure it has already answered.
func (a *api) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	userID, err := a.auth.authenticate(r)
	if err != nil {
		fail(w, r, err)
		return "", false
	}
	return userID, true
}

func (a *api) account(w http.ResponseWriter, r *http.Request) {
	userID, ok := a.user(w, r)
	if !ok {
		return
	}
	id, err := pathID(r)
	if err != nil {
		fail(w, r, accountNotFound())
		return
	}
	var out struct {
		ID       string `json:"account_id"`
		Balance  int64  `json:"balance"`
		Currency string `json:"currency"`
		Status   string `json:"status"`
	}
	err = a.db.readTx(r.Context(), func(tx pgx.Tx) error {
		return tx.QueryRow(r.Context(), `SELECT id::text, balance, currency, status FROM accounts
		  WHERE id = $1 AND user_id = $2 AND kind = 'user'`, id, userID).Scan(&out.ID, &out.Balance, &out.Currency, &out.Status)
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

// pathID is the {id} path segment as a canonical UUID string; anything else is simply unknown (404).
func pathID(r *http.Request) (string, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if ts, id, ok := strings.Cut(string(raw), "|"); ok {
			t, terr := time.Parse(time.RFC3339Nano, ts)
			if _, uerr := uuid.Parse(id); terr == nil && uerr == nil {
				return t, id, nil
			}
		}
	}
	return time.Time{}, "", invalid("the cursor is not valid; use next_cursor as returned")
}

// history: keyset paging, newest first, over the transactions touching the account.
func (a *api) history(w http.ResponseWriter, r *http.Request) {
	userID, ok := a.user(w, r)
	if !ok {
		return
	}
	id, err := pathID(r)
	if err != nil {
		fail(w, r, accountNotFound())
		return
	}
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 100 {
			fail(w, r, invalid("limit must be an integer between 1 and 100"))
			return
		}
	}
	var afterTS *time.Time
	var afterID *string
	if c := r.URL.Query().Get("cursor"); c != "" {
		t, cid, err := decodeCursor(c)
		if err != nil {
			fail(w, r, err)
			return
		}
		afterTS, afterID = &t, &cid
	}
	items := []Transaction{}
	err = a.db.readTx(r.Context(), func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(r.Context(), `SELECT 1 FROM accounts WHERE id = $1 AND user_id = $2`, id, userID).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return accountNotFound()
			}
			return err
		}
		rows, err := tx.Query(r.Context(), `SELECT `+txnColumns+` FROM transactions
		  WHERE (from_account_id = $1 OR to_account_id = $1)
		    AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
		  ORDER BY created_at DESC, id DESC LIMIT $4`, id, afterTS, afterID, limit+1)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanTxn(rows)
			if err != nil {
				return err
			}
			items = append(items, t)
		}
		return rows.Err()
	})
	if err != nil {
		fail(w, r, err)
		return
	}
	var next *string
	if len(items) > limit {
		items = items[:limit]
		c := encodeCursor(items[limit-1].CreatedAt, items[limit-1].ID)
		next = &c
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
}

// transaction by id: visible to its creator and to the owner of either account it touches.
func (a *api) transaction(w http.ResponseWriter, r *http.Request) {
	userID, ok := a.user(w, r)
	if !ok {
		return
	}
	id, err := pathID(r)
	if err != nil {
		fail(w, r, problem("TRANSACTION_NOT_FOUND", "No such transaction."))
		return
	}
	a.oneTxn(w, r, `SELECT `+txnColumns+` FROM transactions t WHERE t.id = $1 AND (t.user_id = $2 OR EXISTS (
	    SELECT 1 FROM accounts a WHERE a.user_id = $2 AND a.id IN (t.from_account_id, t.to_account_id)))`, id, userID)
}

func (a *api) byKey(w http.ResponseWriter, r *http.Request) {
	userID, ok := a.user(w, r)
	if !ok {
		return
	}
	key := r.URL.Query().Get("idempotency_key")
	if !keyPattern.MatchString(key) {
		fail(w, r, invalid("idempotency_key query parameter is required (1-128 printable characters)"))
		return
	}
	a.oneTxn(w, r, `SELECT `+txnColumns+` FROM transactions WHERE user_id = $1 AND idempotency_key = $2`, userID, key)
}

func (a *api) oneTxn(w http.ResponseWriter, r *http.Request, query string, args ...any) {
	var t Transaction
	err := a.db.readTx(r.Context(), func(tx pgx.Tx) error {
		var err error
		t, err = scanTxn(tx.QueryRow(r.Context(), query, args...))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		err = problem("TRANSACTION_NOT_FOUND", "No such transaction.")
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// moneyRequest: auth, Idempotency-Key, then the body — the common front of the three money POSTs.
func (a *api) moneyRequest(w http.ResponseWriter, r *http.Request) (string, string, body, bool) {
	userID, ok := a.user(w, r)
	if !ok {
		return "", "", nil, false
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		fail(w, r, problem("IDEMPOTENCY_KEY_MISSING", "Money-moving requests need an Idempotency-Key header."))
		return "", "", nil, false
	}
	if !keyPattern.MatchString(key) {
		fail(w, r, invalid("Idempotency-Key must be 1-128 printable characters"))
		return "", "", nil, false
	}
	b, err := decodeBody(r)
	if err != nil {
		fail(w, r, err)
		return "", "", nil, false
	}
	return userID, key, b, true
}

// answerTxn: 201 once settled, 202 while pending; a failed transaction answers its failure problem.
func answerTxn(w http.ResponseWriter, r *http.Request, t Transaction, err error) {
	if err != nil {
		fail(w, r, err)
		return
	}
	switch t.Status {
	case "failed":
		fail(w, r, gatewayFailed(t.ID, "recorded outcome"))
	case "pending":
		writeJSON(w, http.StatusAccepted, t)
	default:
		writeJSON(w, http.StatusCreated, t)
	}
}

func (a *api) deposit(w http.ResponseWriter, r *http.Request) {
	userID, key, b, ok := a.moneyRequest(w, r)
	if !ok {
		return
	}
	account, err := b.accountID("account_id")
	amount, err2 := b.amount()
	if err = firstErr(err, err2); err != nil {
		fail(w, r, err)
		return
	}
	k := newIdemKey(userID, key, "deposit", map[string]any{"account_id": account, "amount": amount})
	t, err := a.money.deposit(r.Context(), k, account, amount)
	answerTxn(w, r, t, err)
}

func (a *api) withdraw(w http.ResponseWriter, r *http.Request) {
	userID, key, b, ok := a.moneyRequest(w, r)
	if !ok {
		return
	}
	account, err := b.accountID("account_id")
	amount, err2 := b.amount()
	pin, err3 := b.str("pin", pinPattern, 6)
	if err = firstErr(err, err2, err3); err != nil {
		fail(w, r, err)
		return
	}
	k := newIdemKey(userID, key, "withdrawal", map[string]any{"account_id": account, "amount": amount, "pin": pin})
	t, err := a.money.withdraw(r.Context(), k, account, amount, pin)
	answerTxn(w, r, t, err)
}

func (a *api) transfer(w http.ResponseWriter, r *http.Request) {
	userID, key, b, ok := a.moneyRequest(w, r)
	if !ok {
		return
	}
	from, err := b.accountID("from_account_id")
	to, err2 := b.accountID("to_account_id")
	amount, err3 := b.amount()
	pin, err4 := b.str("pin", pinPattern, 6)
	if err = firstErr(err, err2, err3, err4); err != nil {
		fail(w, r, err)
		return
	}
	if from == to {
		fail(w, r, invalid("from_account_id and to_account_id must differ"))
		return
	}
	k := newIdemKey(userID, key, "transfer", map[string]any{"from_account_id": from, "to_account_id": to,
		"amount": amount, "pin": pin})
	t, err := a.money.transfer(r.Context(), k, from, to, amount, pin)
	answerTxn(w, r, t, err)
}

// firstErr prefers a validation error over "not found" (a malformed body is a 422 whatever the ids say).
func firstErr(errs ...error) error {
	var first error
	for _, err := range errs {
		var p *Problem
		if errors.As(err, &p) && p.Code == "VALIDATION_ERROR" {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}
