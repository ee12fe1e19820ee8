package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/crypto/bcrypt"
)

// maxFailures consecutive failed logins (or PIN attempts) lock that credential for Config.Lockout.
const maxFailures = 5

// auth owns users, sessions and the two independent lockouts (login, PIN).
//
// Passwords and PINs are stored as bcrypt hashes (cost WALLET_BCRYPT_COST, default 6 — low on purpose
// for a load-test target; production would use >= 10). Session tokens are 32 random bytes; only their
// SHA-256 is stored. A correct PIN, once verified, is remembered per process as an HMAC under a random
// key so that bcrypt runs once per user, not once per payment: the cache changes cost, never outcome.
type auth struct {
	db      *store
	cfg     Config
	pinKey  []byte
	mu      sync.Mutex
	goodPin map[string][]byte // user id → HMAC(pinKey, pin) of the last verified PIN
}

func newAuth(db *store, cfg Config) *auth {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &auth{db: db, cfg: cfg, pinKey: key, goodPin: map[string][]byte{}}
}

func (a *auth) register(ctx context.Context, username, password, pin string) (string, string, error) {
	pw, err := bcrypt.GenerateFromPassword([]byte(password), a.cfg.BcryptCost)
	if err != nil {
		return "", "", err
	}
	ph, err := bcrypt.GenerateFromPassword([]byte(pin), a.cfg.BcryptCost)
	if err != nil {
		return "", "", err
	}
	userID, accountID := uuid.NewString(), uuid.NewString()
	err = a.db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO users (id, username, password_hash, pin_hash) VALUES ($1, $2, $3, $4)`,
			userID, username, pw, ph)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return problem("USERNAME_TAKEN", "This username is taken.")
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO accounts (id, user_id, kind) VALUES ($1, $2, 'user')`, accountID, userID)
		return err
	})
	return userID, accountID, err
}

func lockedProblem(until time.Time) *Problem {
	u := until.UTC().Format(time.RFC3339Nano)
	return problem("ACCOUNT_LOCKED", "Too many failed attempts; locked until "+u+".").with("locked_until", u)
}

func (a *auth) login(ctx context.Context, username, password string) (string, time.Time, error) {
	var (
		userID string
		hash   []byte
		locked *time.Time
	)
	err := a.db.readTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT id::text, password_hash, login_locked_until FROM users WHERE username = $1`,
			username).Scan(&userID, &hash, &locked)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", time.Time{}, problem("INVALID_CREDENTIALS", "Wrong username or password.")
	}
	if err != nil {
		return "", time.Time{}, err
	}
	if locked != nil && locked.After(time.Now()) {
		return "", time.Time{}, lockedProblem(*locked)
	}
	ok := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	var token string
	expires := time.Now().Add(a.cfg.SessionTTL).UTC()
	err = a.db.inTx(ctx, func(tx pgx.Tx) error {
		// re-read under the row lock: concurrent failures count one by one
		var failed int
		if err := tx.QueryRow(ctx, `SELECT failed_logins, login_locked_until FROM users WHERE id = $1 FOR UPDATE`,
			userID).Scan(&failed, &locked); err != nil {
			return err
		}
		if locked != nil && locked.After(time.Now()) {
			return lockedProblem(*locked)
		}
		if !ok {
			return commitRefusal{a.recordFailure(ctx, tx, userID, "login", failed)}
		}
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		token = base64.RawURLEncoding.EncodeToString(raw)
		sum := sha256.Sum256([]byte(token))
		if _, err := tx.Exec(ctx, `UPDATE users SET failed_logins = 0, login_locked_until = NULL WHERE id = $1`, userID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)`,
			sum[:], userID, expires)
		return err
	})
	return token, expires, err
}

// recordFailure counts one failure of `which` (login|pin) and locks at the fifth; returns the refusal.
func (a *auth) recordFailure(ctx context.Context, tx pgx.Tx, userID, which string, failedBefore int) *Problem {
	counter, until := "failed_logins", "login_locked_until"
	refusal := problem("INVALID_CREDENTIALS", "Wrong username or password.")
	if which == "pin" {
		counter, until = "failed_pins", "pin_locked_until"
		refusal = problem("INVALID_PIN", "Wrong payment PIN.")
	}
	failed := failedBefore + 1
	if failed >= maxFailures {
		lockedUntil := time.Now().Add(a.cfg.Lockout).UTC()
		if _, err := tx.Exec(ctx, `UPDATE users SET `+counter+` = 0, `+until+` = $2 WHERE id = $1`, userID, lockedUntil); err != nil {
			return dbUnavailable(err)
		}
		return lockedProblem(lockedUntil)
	}
	if _, err := tx.Exec(ctx, `UPDATE users SET `+counter+` = $2 WHERE id = $1`, userID, failed); err != nil {
		return dbUnavailable(err)
	}
	return refusal
}

// pinCheck is the PIN verdict computed before the money transaction starts (bcrypt never runs while
// row locks are held); settlePin applies it inside the transaction.
type pinCheck struct{ ok bool }

func (a *auth) verifyPin(ctx context.Context, userID, pin string) (pinCheck, error) {
	mac := hmac.New(sha256.New, a.pinKey)
	mac.Write([]byte(pin))
	sum := mac.Sum(nil)
	a.mu.Lock()
	cached, hit := a.goodPin[userID]
	a.mu.Unlock()
	if hit && hmac.Equal(cached, sum) {
		return pinCheck{ok: true}, nil
	}
	var hash []byte
	err := a.db.readTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT pin_hash FROM users WHERE id = $1`, userID).Scan(&hash)
	})
	if err != nil {
		return pinCheck{}, err
	}
	ok := bcrypt.CompareHashAndPassword(hash, []byte(pin)) == nil
	if ok {
		a.mu.Lock()
		a.goodPin[userID] = sum
		a.mu.Unlock()
	}
	return pinCheck{ok: ok}, nil
}

// settlePin, inside the money transaction: a locked PIN refuses even the right PIN; a wrong PIN counts.
// Returns nil to go ahead, or the refusal (whose side effects must commit).
func (a *auth) settlePin(ctx context.Context, tx pgx.Tx, userID string, check pinCheck) (*Problem, error) {
	var failed int
	var locked *time.Time
	if err := tx.QueryRow(ctx, `SELECT failed_pins, pin_locked_until FROM users WHERE id = $1 FOR UPDATE`,
		userID).Scan(&failed, &locked); err != nil {
		return nil, err
	}
	if locked != nil && locked.After(time.Now()) {
		return lockedProblem(*locked), nil
	}
	if !check.ok {
		return a.recordFailure(ctx, tx, userID, "pin", failed), nil
	}
	if failed != 0 || locked != nil {
		if _, err := tx.Exec(ctx, `UPDATE users SET failed_pins = 0, pin_locked_until = NULL WHERE id = $1`, userID); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// authenticate resolves the bearer token to a user id, or answers UNAUTHENTICATED.
func (a *auth) authenticate(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	token, found := strings.CutPrefix(h, "Bearer ")
	if !found || token == "" {
		return "", problem("UNAUTHENTICATED", "A valid bearer token is required.")
	}
	sum := sha256.Sum256([]byte(token))
	var userID string
	err := a.db.readTx(r.Context(), func(tx pgx.Tx) error {
		return tx.QueryRow(r.Context(), `SELECT user_id::text FROM sessions WHERE token_hash = $1 AND expires_at > now()`,
			sum[:]).Scan(&userID)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", problem("UNAUTHENTICATED", "The token is invalid or expired.")
	}
	return userID, err
}

func (a *auth) isAdmin(r *http.Request) bool {
	token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return found && hmac.Equal([]byte(token), []byte(a.cfg.AdminToken))
}
