package main

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// Planted defects, for proving that the harness catches a broken wallet it never saw (harness self-test
// only). Off by default; WALLET_BUGS=name is refused unless WALLET_ALLOW_BUGS=1 as well, and a wallet
// running with a defect says so in its log and on /healthz. A defect is a decorator around one part
// (here: the gateway port), so the healthy code path has no bug branches at all.
var defects = map[string]struct {
	summary string
	wrap    func(gateway) gateway
}{
	"timeout-as-failure": {"a gateway timeout is treated as a definite failure and reversed",
		func(g gateway) gateway { return timeoutAsFailure{g} }},
}

func plantDefects(g gateway) (gateway, []string, error) {
	planted := []string{}
	spec := strings.TrimSpace(os.Getenv("WALLET_BUGS"))
	if spec == "" {
		return g, planted, nil
	}
	if os.Getenv("WALLET_ALLOW_BUGS") != "1" {
		return nil, nil, fmt.Errorf("WALLET_BUGS=%q plants bugs; refused unless WALLET_ALLOW_BUGS=1 (harness self-test only)", spec)
	}
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		d, ok := defects[name]
		if !ok {
			return nil, nil, fmt.Errorf("WALLET_BUGS: unknown defect %q (go-wallet knows: timeout-as-failure)", name)
		}
		g = d.wrap(g)
		planted = append(planted, name)
		logger.Warn("PLANTED DEFECT active: this wallet is deliberately broken", "bug", name, "summary", d.summary)
	}
	return g, planted, nil
}

// timeoutAsFailure: DEFECT — an unknown gateway outcome (it may well have applied the charge or payout)
// is taken as a definite failure, so the wallet reverses money the gateway moved.
type timeoutAsFailure struct{ gateway }

func (t timeoutAsFailure) submit(ctx context.Context, operation, reference string, amount int64) gatewayResult {
	res := t.gateway.submit(ctx, operation, reference, amount)
	if res.outcome == outcomeUnknown {
		return gatewayResult{outcomeFailed, "treated as failed: " + res.detail}
	}
	return res
}
