package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// The error catalog of CONTRACT.md: code → (status, retryable, title). Every error response is built
// from this table, so status and retryable can never disagree with the code.
type catalogEntry struct {
	Status    int
	Retryable bool
	Title     string
}

var catalog = map[string]catalogEntry{
	"VALIDATION_ERROR":        {422, false, "The request is not valid"},
	"UNAUTHENTICATED":         {401, false, "Authentication required"},
	"INVALID_CREDENTIALS":     {401, false, "Wrong username or password"},
	"ACCOUNT_LOCKED":          {423, false, "Locked after too many failed attempts"},
	"INVALID_PIN":             {403, false, "Wrong payment PIN"},
	"ACCOUNT_FROZEN":          {403, false, "Account frozen"},
	"ACCOUNT_NOT_FOUND":       {404, false, "Account not found"},
	"TRANSACTION_NOT_FOUND":   {404, false, "Transaction not found"},
	"USERNAME_TAKEN":          {409, false, "Username taken"},
	"INSUFFICIENT_FUNDS":      {409, false, "Insufficient funds"},
	"IDEMPOTENCY_KEY_MISSING": {400, false, "Idempotency-Key header required"},
	"IDEMPOTENCY_KEY_REUSED":  {409, false, "Idempotency-Key reused for a different request"},
	"REQUEST_IN_PROGRESS":     {409, true, "Request with this key still in progress"},
	"RATE_LIMITED":            {429, true, "Too many requests"},
	"MAINTENANCE":             {503, true, "Under maintenance"},
	"DATABASE_UNAVAILABLE":    {503, true, "Database unavailable"},
	"GATEWAY_ERROR":           {502, true, "Payment gateway error"},
	"GATEWAY_TIMEOUT":         {504, true, "Outcome unknown"},
	"INTERNAL_ERROR":          {500, false, "Internal error"},
	// not in the catalog's table, but every unknown route/method still answers problem+json
	"NOT_FOUND":          {404, false, "No such resource"},
	"METHOD_NOT_ALLOWED": {405, false, "Method not allowed"},
}

// Problem is an RFC 9457 problem; it is also the error type every layer returns for a refusal.
type Problem struct {
	Code       string
	Detail     string
	RetryAfter *int           // seconds; nil = 1 s on 429/503, none otherwise
	Extra      map[string]any // extra members (transaction_id, locked_until)
}

func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

func problem(code, detail string) *Problem { return &Problem{Code: code, Detail: detail} }

func (p *Problem) with(key string, value any) *Problem {
	if p.Extra == nil {
		p.Extra = map[string]any{}
	}
	p.Extra[key] = value
	return p
}

func (p *Problem) retryAfter(seconds int) *Problem {
	p.RetryAfter = &seconds
	return p
}

func (p *Problem) status() int {
	if e, ok := catalog[p.Code]; ok {
		return e.Status
	}
	return 500
}

func (p *Problem) body(requestID string) map[string]any {
	e, ok := catalog[p.Code]
	if !ok {
		e = catalog["INTERNAL_ERROR"]
	}
	body := map[string]any{}
	for k, v := range p.Extra {
		body[k] = v
	}
	body["type"] = "https://walletchaos.dev/problems/" + strings.ReplaceAll(strings.ToLower(p.Code), "_", "-")
	body["title"] = e.Title
	body["status"] = e.Status
	body["detail"] = p.Detail
	body["code"] = p.Code
	body["request_id"] = requestID
	body["retryable"] = e.Retryable
	return body
}

func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	st := stateOf(r)
	if st != nil {
		st.code.Store(p.Code)
	}
	status := p.status()
	if p.RetryAfter != nil {
		w.Header().Set("Retry-After", strconv.Itoa(*p.RetryAfter))
	} else if status == 429 || status == 503 {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p.body(requestIDOf(r)))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
