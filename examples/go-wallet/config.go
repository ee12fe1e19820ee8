package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Config comes from the environment only; the names mirror the Python mock wallet's (docs/internals.md),
// so a target file can start either wallet with the same env block.
type Config struct {
	DatabaseURL    string
	GatewayURL     string
	AdminToken     string
	Host           string
	Port           int
	Deadline       time.Duration // every request is answered within this
	DBTimeout      time.Duration // one DB transaction, including waiting for a pool connection
	GatewayTimeout time.Duration // one gateway call
	Lockout        time.Duration // how long ACCOUNT_LOCKED lasts after 5 consecutive failures
	MaxInflight    int           // /v1 requests served at once; more are shed with 429 RATE_LIMITED
	SessionTTL     time.Duration
	PoolSize       int
	BcryptCost     int
}

func loadConfig() (Config, error) {
	c := Config{
		DatabaseURL: os.Getenv("DATABASE_URL"),
		GatewayURL:  envString("GATEWAY_URL", "http://127.0.0.1:8081"),
		AdminToken:  envString("WALLET_ADMIN_TOKEN", "admin-secret"),
		Host:        envString("WALLET_HOST", "127.0.0.1"),
	}
	var err error
	if c.DatabaseURL == "" {
		return c, fmt.Errorf("DATABASE_URL is not set")
	}
	if c.Port, err = envInt("WALLET_PORT", 8080); err != nil {
		return c, err
	}
	if c.Deadline, err = envSeconds("WALLET_DEADLINE_S", 5); err != nil {
		return c, err
	}
	if c.DBTimeout, err = envSeconds("WALLET_DB_TIMEOUT_S", 2); err != nil {
		return c, err
	}
	if c.GatewayTimeout, err = envSeconds("WALLET_GATEWAY_TIMEOUT_S", 2); err != nil {
		return c, err
	}
	if c.Lockout, err = envSeconds("WALLET_LOCKOUT_S", 300); err != nil {
		return c, err
	}
	if c.SessionTTL, err = envSeconds("WALLET_SESSION_TTL_S", 3600); err != nil {
		return c, err
	}
	if c.MaxInflight, err = envInt("WALLET_MAX_INFLIGHT", 64); err != nil {
		return c, err
	}
	if c.PoolSize, err = envInt("WALLET_POOL_SIZE", 10); err != nil {
		return c, err
	}
	if c.BcryptCost, err = envInt("WALLET_BCRYPT_COST", 6); err != nil {
		return c, err
	}
	return c, nil
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q is not a positive integer", name, v)
	}
	return n, nil
}

func envSeconds(name string, def float64) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return time.Duration(def * float64(time.Second)), nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive number of seconds", name, v)
	}
	return time.Duration(f * float64(time.Second)), nil
}
