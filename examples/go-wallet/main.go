// go-wallet: a second, independent implementation of the walletchaos wallet contract
// (/work/shared/CONTRACT.md) in Go, with net/http and pgx. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// logger writes one JSON object per line to stderr: ts, level, msg, and request_id where there is one.
var logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{
	ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		switch {
		case len(groups) > 0:
		case a.Key == slog.TimeKey:
			return slog.Float64("ts", float64(a.Value.Time().UnixMicro())/1e6)
		case a.Key == slog.LevelKey: // lower case like the mock wallet: debug, info, warning, error
			level := strings.ToLower(a.Value.String())
			if level == "warn" {
				level = "warning"
			}
			return slog.String("level", level)
		}
		return a
	},
}))

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "go-wallet:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	// --host/--port flags override WALLET_HOST/WALLET_PORT (target files pass {host} {port} either way)
	for i := 1; i+1 < len(os.Args); i += 2 {
		switch os.Args[i] {
		case "--host":
			cfg.Host = os.Args[i+1]
		case "--port":
			if cfg.Port, err = strconv.Atoi(os.Args[i+1]); err != nil {
				return fmt.Errorf("--port %q is not a number", os.Args[i+1])
			}
		default:
			return fmt.Errorf("unknown argument %q (usage: go-wallet [--host H] [--port P])", os.Args[i])
		}
	}
	gw, planted, err := plantDefects(newGatewayClient(cfg))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	db, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.pool.Close()
	if err := migrateWithRetry(ctx, db); err != nil {
		return err
	}

	db.detectCommitTimestamps(ctx)
	m := newMetrics()
	au := newAuth(db, cfg)
	mo := &money{db: db, auth: au, gateway: gw, metrics: m, lease: cfg.Deadline + 2*time.Second}
	a := &api{auth: au, money: mo, db: db}
	maint := &maintenance{retryAfter: 30}
	ad := &admin{api: a, maintenance: maint}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/users", a.register)
	mux.HandleFunc("POST /v1/sessions", a.login)
	mux.HandleFunc("GET /v1/accounts/{id}", a.account)
	mux.HandleFunc("GET /v1/accounts/{id}/transactions", a.history)
	mux.HandleFunc("POST /v1/deposits", a.deposit)
	mux.HandleFunc("POST /v1/withdrawals", a.withdraw)
	mux.HandleFunc("POST /v1/transfers", a.transfer)
	mux.HandleFunc("GET /v1/transactions/{id}", a.transaction)
	mux.HandleFunc("GET /v1/transactions", a.byKey)
	mux.HandleFunc("POST /admin/maintenance", ad.guard(ad.setMaintenance))
	mux.HandleFunc("POST /admin/accounts/{id}/freeze", ad.guard(ad.setStatus("frozen")))
	mux.HandleFunc("POST /admin/accounts/{id}/unfreeze", ad.guard(ad.setStatus("active")))
	mux.HandleFunc("POST /admin/reconcile", ad.guard(ad.reconcile))
	mux.HandleFunc("GET /admin/audit", ad.guard(ad.audit))
	mux.HandleFunc("GET /admin/export", ad.guard(ad.export))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "implementation": "go-wallet", "planted_bugs": planted})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := db.ping(r.Context()); err != nil {
			writeProblem(w, r, dbUnavailable(err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))

	front := &frontDoor{next: unknownRoute(mux), mux: mux, deadline: cfg.Deadline, maxInflight: int64(cfg.MaxInflight),
		maintenance: maint, metrics: m, log: logger}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	srv := &http.Server{Addr: addr, Handler: front, ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout: 75 * time.Second,                                    // longer than any client's idle gap: the client closes first
		ErrorLog:    slog.NewLogLogger(logger.Handler(), slog.LevelWarn)} // net/http's own lines as JSON too
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("listening", "addr", addr, "deadline_s", cfg.Deadline.Seconds())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.Deadline+time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// migrateWithRetry: PostgreSQL may still be starting (or restarting after a fault) when we start.
func migrateWithRetry(ctx context.Context, db *store) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := db.migrate(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("database schema: %w", err)
			}
			return nil
		}
		logger.Warn("database not ready, retrying", "error", err.Error())
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}
