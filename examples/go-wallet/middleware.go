package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// reqState is what the deadline backstop needs to know about a request it cuts off: whether anything
// may have been applied. Handlers update it as they go (store.go marks writes and commits).
type reqState struct {
	requestID      string
	code           atomic.Value // problem code answered, for logs/metrics
	pendingTxn     atomic.Value // string: a transaction left pending at the gateway step
	commitInFlight atomic.Bool  // a COMMIT was sent and not yet confirmed
	committed      atomic.Bool  // a read-write transaction committed
}

type ctxKey struct{}

func stateOf(r *http.Request) *reqState {
	st, _ := r.Context().Value(ctxKey{}).(*reqState)
	return st
}

func withState(ctx context.Context, st *reqState) context.Context {
	return context.WithValue(ctx, ctxKey{}, st)
}

func stateFromCtx(ctx context.Context) *reqState {
	st, _ := ctx.Value(ctxKey{}).(*reqState)
	return st
}

func requestIDOf(r *http.Request) string {
	if st := stateOf(r); st != nil {
		return st.requestID
	}
	return ""
}

var validRequestID = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)

// bufferedWriter holds the handler's response until the middleware decides to send it, so the
// deadline backstop can still answer a problem when the handler overruns (nothing was sent yet).
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(s int) {
	if b.status == 0 {
		b.status = s
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = 200
	}
	return b.body.Write(p)
}

// Server-level behaviour around every handler: request id, overload shedding and maintenance for /v1,
// the deadline backstop, panic containment, one log line and metrics per request.
type frontDoor struct {
	next        http.Handler
	mux         *http.ServeMux
	deadline    time.Duration
	maxInflight int64
	inflight    atomic.Int64
	maintenance *maintenance
	metrics     *metrics
	log         *slog.Logger
}

type maintenance struct {
	mu         sync.Mutex
	enabled    bool
	retryAfter int
}

func (m *maintenance) get() (bool, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.enabled, m.retryAfter
}

func (m *maintenance) set(enabled bool, retryAfter int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enabled, m.retryAfter = enabled, retryAfter
}

// deadlineMargin: answer a little before the deadline, so the client sees the answer in time.
const deadlineMargin = 500 * time.Millisecond

func (f *frontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	rid := r.Header.Get("X-Request-ID")
	if !validRequestID.MatchString(rid) {
		rid = strings.ReplaceAll(uuid.NewString(), "-", "")
	}
	st := &reqState{requestID: rid}
	w.Header().Set("X-Request-ID", rid)
	budget := f.deadline - deadlineMargin
	if budget < f.deadline*8/10 {
		budget = f.deadline * 8 / 10
	}
	ctx, cancel := context.WithTimeout(withState(r.Context(), st), budget)
	defer cancel()
	r = r.WithContext(ctx)
	_, route := f.mux.Handler(r)
	if route == "" {
		route = "unmatched"
	}
	isAPI := strings.HasPrefix(r.URL.Path, "/v1/")
	if isAPI {
		f.inflight.Add(1)
		defer f.inflight.Add(-1)
	}
	status := f.serve(w, r, st, isAPI)
	elapsed := time.Since(started)
	code, _ := st.code.Load().(string)
	f.metrics.observe(r.Method, route, status, code, elapsed)
	level := slog.LevelInfo
	if status >= 500 && code == "INTERNAL_ERROR" {
		level = slog.LevelError
	}
	f.log.LogAttrs(context.Background(), level, "request", slog.String("request_id", rid),
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
		slog.Int("status", status), slog.String("code", code),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000))
}

func (f *frontDoor) serve(w http.ResponseWriter, r *http.Request, st *reqState, isAPI bool) int {
	if isAPI {
		if on, after := f.maintenance.get(); on {
			writeProblem(w, r, problem("MAINTENANCE", "The wallet is under maintenance; retry later.").retryAfter(after))
			return 503
		}
		if f.inflight.Load() > f.maxInflight {
			f.metrics.shed.Inc()
			writeProblem(w, r, problem("RATE_LIMITED", "The wallet is overloaded; retry later.").retryAfter(1))
			return 429
		}
	}
	buf := &bufferedWriter{header: http.Header{}}
	done := make(chan any, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- p
				return
			}
			done <- nil
		}()
		f.next.ServeHTTP(buf, r)
	}()
	select {
	case p := <-done:
		if p != nil {
			f.log.Error("unhandled panic", "request_id", st.requestID, "panic", p)
			writeProblem(w, r, problem("INTERNAL_ERROR", "An unexpected error occurred."))
			return 500
		}
		for k, v := range buf.header {
			w.Header()[k] = v
		}
		if buf.status == 0 {
			buf.status = 200
		}
		w.WriteHeader(buf.status)
		_, _ = w.Write(buf.body.Bytes())
		return buf.status
	case <-r.Context().Done():
		// the handler keeps running in the background until its own contexts end; its buffer is dropped
		p := deadlineProblem(st)
		writeProblem(w, r, p)
		return p.status()
	}
}

// deadlineProblem: the answer for a request its deadline cut off; "nothing was applied" only if nothing was.
func deadlineProblem(st *reqState) *Problem {
	if id, ok := st.pendingTxn.Load().(string); ok && id != "" {
		return gatewayUnknown(id, "deadline reached")
	}
	if st.commitInFlight.Load() || st.committed.Load() {
		return problem("GATEWAY_TIMEOUT", "The request's deadline was reached after its changes may have been "+
			"committed; retry with the same Idempotency-Key to get the outcome.").retryAfter(1)
	}
	return problem("DATABASE_UNAVAILABLE", "A dependency did not answer within the request deadline; nothing was applied.").retryAfter(1)
}

func gatewayUnknown(txnID, detail string) *Problem {
	return problem("GATEWAY_TIMEOUT", "The payment gateway's answer is unknown ("+detail+"); the transaction is "+
		"pending and will be settled by reconciliation.").with("transaction_id", txnID)
}

// unknownRoute turns the mux's own 404/405 into problems.
func unknownRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // (the mux, not h: only ServeHTTP fills in r.PathValue)
			return
		}
		probe := &bufferedWriter{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			writeProblem(w, r, problem("METHOD_NOT_ALLOWED", "This method is not allowed on this resource."))
			return
		}
		writeProblem(w, r, problem("NOT_FOUND", "No such resource."))
	})
}
