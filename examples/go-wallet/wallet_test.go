package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The deadline backstop must never say "nothing was applied" once anything may have committed.
func TestDeadlineProblemNeverClaimsNothingAppliedAfterACommit(t *testing.T) {
	cases := []struct {
		name string
		set  func(*reqState)
		code string
	}{
		{"nothing happened", func(*reqState) {}, "DATABASE_UNAVAILABLE"},
		{"commit in flight", func(s *reqState) { s.commitInFlight.Store(true) }, "GATEWAY_TIMEOUT"},
		{"committed", func(s *reqState) { s.committed.Store(true) }, "GATEWAY_TIMEOUT"},
		{"at the gateway", func(s *reqState) { s.pendingTxn.Store("t-1") }, "GATEWAY_TIMEOUT"},
	}
	for _, c := range cases {
		st := &reqState{}
		c.set(st)
		p := deadlineProblem(st)
		if p.Code != c.code {
			t.Errorf("%s: got %s, want %s", c.name, p.Code, c.code)
		}
	}
	st := &reqState{}
	st.pendingTxn.Store("t-1")
	if got := deadlineProblem(st).Extra["transaction_id"]; got != "t-1" {
		t.Errorf("a pending gateway call must name its transaction, got %v", got)
	}
}

func TestEveryProblemHasTheContractMembers(t *testing.T) {
	for code, entry := range catalog {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		st := &reqState{requestID: "rid-1"}
		req = req.WithContext(withState(req.Context(), st))
		writeProblem(rec, req, problem(code, "detail text"))
		if rec.Code != entry.Status {
			t.Errorf("%s: status %d, want %d", code, rec.Code, entry.Status)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: content type %q", code, ct)
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %v", code, err)
		}
		for _, member := range []string{"type", "title", "status", "detail", "code", "request_id", "retryable"} {
			if _, ok := body[member]; !ok {
				t.Errorf("%s: member %s missing", code, member)
			}
		}
		if body["retryable"] != entry.Retryable || body["request_id"] != "rid-1" || body["code"] != code {
			t.Errorf("%s: body %v", code, body)
		}
		if (entry.Status == 429 || entry.Status == 503) && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", code)
		}
	}
}

func TestAmountIsAStrictPositiveInteger(t *testing.T) {
	good := map[string]int64{`1`: 1, `250`: 250, `1000000000000`: maxAmount}
	for raw, want := range good {
		got, err := body{"amount": json.RawMessage(raw)}.amount()
		if err != nil || got != want {
			t.Errorf("amount %s: got %d, %v", raw, got, err)
		}
	}
	for _, raw := range []string{`0`, `-5`, `1.5`, `"10"`, `1e3`, `true`, `null`, `10000000000001`, `99999999999999999999`} {
		if _, err := (body{"amount": json.RawMessage(raw)}).amount(); err == nil {
			t.Errorf("amount %s accepted", raw)
		}
	}
	if _, err := (body{}).amount(); err == nil {
		t.Error("a missing amount was accepted")
	}
}

func TestCursorRoundTripsAndRejectsGarbage(t *testing.T) {
	at := time.Date(2026, 12, 2, 16, 0, 0, 123456000, time.UTC)
	id := "7d444840-9dc0-11d1-b245-5ffdce74fad2"
	gotAt, gotID, err := decodeCursor(encodeCursor(at, id))
	if err != nil || !gotAt.Equal(at) || gotID != id {
		t.Fatalf("round trip: %v %v %v", gotAt, gotID, err)
	}
	for _, c := range []string{"garbage", encodeCursor(at, "not-a-uuid"), "fA"} {
		if _, _, err := decodeCursor(c); err == nil {
			t.Errorf("cursor %q accepted", c)
		}
	}
}

func TestIdempotencyHashSeesEveryField(t *testing.T) {
	a := newIdemKey("u", "k", "transfer", map[string]any{"amount": int64(100), "to_account_id": "x"})
	b := newIdemKey("u", "k", "transfer", map[string]any{"amount": int64(101), "to_account_id": "x"})
	c := newIdemKey("u", "k", "deposit", map[string]any{"amount": int64(100), "to_account_id": "x"})
	same := newIdemKey("u", "k", "transfer", map[string]any{"to_account_id": "x", "amount": int64(100)})
	if a.hash == b.hash || a.hash == c.hash || a.hash != same.hash {
		t.Errorf("hashes: %s %s %s %s", a.hash, b.hash, c.hash, same.hash)
	}
}

func TestUnknownRoutesAndMethodsAreProblems(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/transfers", func(w http.ResponseWriter, r *http.Request) {})
	h := unknownRoute(mux)
	for path, want := range map[string]string{"/nope": "NOT_FOUND", "/v1/transfers": "METHOD_NOT_ALLOWED"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodDelete, path, nil)
		h.ServeHTTP(rec, req)
		if !strings.Contains(rec.Body.String(), `"code":"`+want+`"`) {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Body.String())
		}
	}
}
