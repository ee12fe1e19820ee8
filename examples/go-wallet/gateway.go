package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	outcomeSucceeded = "succeeded"
	outcomeDeclined  = "declined" // definite: nothing applied
	outcomeFailed    = "failed"   // definite error answer: nothing applied
	outcomeUnknown   = "unknown"  // timeout, reset, unreadable answer: the gateway may have applied it
	outcomeNotFound  = "not_found"
)

type gatewayResult struct {
	outcome string
	detail  string
}

// gateway is what the money paths need from the payment gateway (a planted defect wraps it: defects.go).
type gateway interface {
	submit(ctx context.Context, operation, reference string, amount int64) gatewayResult
	lookup(ctx context.Context, operation, reference string) gatewayResult
}

// gatewayClient talks to the payment gateway (docs/internals.md "Mock gateway endpoints"); the
// transaction id is the reference, so every call is idempotent at the gateway.
type gatewayClient struct {
	base    string
	timeout time.Duration
	http    *http.Client
}

func newGatewayClient(cfg Config) *gatewayClient {
	return &gatewayClient{base: strings.TrimRight(cfg.GatewayURL, "/"), timeout: cfg.GatewayTimeout,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 60 * time.Second}}}
}

func (g *gatewayClient) submit(ctx context.Context, operation, reference string, amount int64) gatewayResult {
	body, _ := json.Marshal(map[string]any{"reference": reference, "amount": amount})
	return g.do(ctx, http.MethodPost, "/"+operation, body)
}

func (g *gatewayClient) lookup(ctx context.Context, operation, reference string) gatewayResult {
	return g.do(ctx, http.MethodGet, "/"+operation+"/"+reference, nil)
}

func (g *gatewayClient) do(ctx context.Context, method, path string, body []byte) gatewayResult {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, bytes.NewReader(body))
	if err != nil {
		return gatewayResult{outcomeUnknown, err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.http.Do(req)
	if err != nil {
		return gatewayResult{outcomeUnknown, "no answer: " + shortErr(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return gatewayResult{outcomeUnknown, "answer cut off: " + shortErr(err)}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		var rec struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(raw, &rec) != nil {
			return gatewayResult{outcomeUnknown, "unreadable answer"}
		}
		switch rec.Status {
		case "succeeded":
			return gatewayResult{outcomeSucceeded, "succeeded"}
		case "declined":
			return gatewayResult{outcomeDeclined, "declined"}
		}
		return gatewayResult{outcomeUnknown, "unexpected status " + rec.Status}
	case resp.StatusCode == http.StatusNotFound && method == http.MethodGet:
		return gatewayResult{outcomeNotFound, "no record"}
	case resp.StatusCode >= 400:
		// a definite failure is an answer from the gateway itself: a JSON {"error": ...} body
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return gatewayResult{outcomeFailed, fmt.Sprintf("HTTP %d", resp.StatusCode)}
		}
	}
	return gatewayResult{outcomeUnknown, fmt.Sprintf("unexpected HTTP %d", resp.StatusCode)}
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}
