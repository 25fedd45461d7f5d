package loadgen_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/infra/dev/devidp"
	"github.com/dlicense/dlicense/infra/dev/loadgen"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/setup"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler)) // one log line per request
	os.Exit(m.Run())
}

// server runs the local API over httptest on the embedded store, as the
// local end-to-end test does, and returns its URL and a token function.
func server(t *testing.T) (string, func(member, plan string) string) {
	t.Helper()
	keys, err := local.LoadKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := setup.Config{SigningKeys: keys.Signing.Encode(), Issuer: "dlicense-load", PlanClaim: "plan", QuietMetrics: true}
	parts, err := local.Build(context.Background(), "memory", cfg)
	if err != nil {
		t.Fatal(err)
	}
	issuer := devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, keys.Issuer)
	srv := httptest.NewServer(local.NewGateway(parts.Handler(), issuer, httpapi.PublicRoutes()))
	t.Cleanup(srv.Close)
	return srv.URL, func(member, plan string) string {
		tok, err := issuer.Mint(member, plan, nil, time.Hour, time.Now())
		if err != nil {
			t.Errorf("Mint(%s, %s) = %v", member, plan, err)
		}
		return tok
	}
}

func TestRunAgainstLocalServer(t *testing.T) {
	url, token := server(t)
	const requests = 400
	done := 0
	s, err := loadgen.Run(context.Background(), loadgen.Config{
		BaseURL: url, Members: 12, Concurrency: 4, Requests: requests, Duration: time.Minute, Seed: 7, Token: token,
	}, func(n int) { done = n })
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	t.Logf("summary:\n%s", s.Markdown())
	if s.Requests != requests || done != requests {
		t.Errorf("Run counted %d requests and reported %d done, want %d", s.Requests, done, requests)
	}
	if s.Errors() != 0 {
		t.Errorf("Run had %d 5xx and %d transport errors, want none; first: %s", s.ServerErrors, s.TransportErrors, s.FirstError)
	}
	if s.Status[401] > 0 {
		t.Errorf("Run had %d 401 answers: the tokens were refused", s.Status[401])
	}
	total := s.TransportErrors
	for _, n := range s.Status {
		total += n
	}
	if total != s.Requests {
		t.Errorf("status counts + transport errors = %d, want %d", total, s.Requests)
	}
	byOp := 0
	for _, op := range loadgen.Ops {
		o, ok := s.Ops[op]
		if !ok || o.Requests == 0 {
			t.Errorf("operation %s was never sent", op)
			continue
		}
		n := o.TransportErrors
		for _, c := range o.Status {
			n += c
		}
		if n != o.Requests {
			t.Errorf("%s: status counts + transport errors = %d, want %d", op, n, o.Requests)
		}
		if o.Latency.P50 <= 0 || o.Latency.P50 > o.Latency.P90 || o.Latency.P90 > o.Latency.P99 {
			t.Errorf("%s latency = %+v, want 0 < p50 ≤ p90 ≤ p99", op, o.Latency)
		}
		byOp += o.Requests
	}
	if byOp != s.Requests || len(s.Ops) != len(loadgen.Ops) {
		t.Errorf("operations add up to %d over %d kinds, want %d over %d", byOp, len(s.Ops), s.Requests, len(loadgen.Ops))
	}
	if s.Ops[loadgen.OpAcquire].Status[201] == 0 || s.Ops[loadgen.OpPlayback].Status[200] == 0 || s.Ops[loadgen.OpRelease].Status[200] == 0 {
		t.Errorf("no successful acquisition, playback or release: %+v", s.Ops)
	}
	events := 0
	for _, n := range s.PlaybackEvents {
		events += n
	}
	if accepted := s.PlaybackEvents["ACCEPTED"]; events == 0 || accepted*10 < events*8 {
		t.Errorf("playback events %v: want at least 80 %% accepted", s.PlaybackEvents)
	}
	if s.AcquireLatency != s.Ops[loadgen.OpAcquire].Latency || s.Throughput <= 0 {
		t.Errorf("acquire latency %+v, throughput %v", s.AcquireLatency, s.Throughput)
	}
	if md := s.Markdown(); !strings.Contains(md, "| acquire |") || !strings.Contains(md, "| eligibility |") {
		t.Errorf("Markdown() = %q, want a row per operation", md)
	}
}

func TestRunStopsAtDuration(t *testing.T) {
	url, token := server(t)
	start := time.Now()
	s, err := loadgen.Run(context.Background(), loadgen.Config{
		BaseURL: url, Members: 3, Concurrency: 2, Duration: 300 * time.Millisecond, Seed: 1, Token: token,
	}, nil)
	if err != nil || s.Requests == 0 {
		t.Fatalf("Run = %d requests, %v", s.Requests, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run with a 300ms bound took %v", took)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	token := func(string, string) string { return "t" }
	ok := loadgen.Config{BaseURL: "http://127.0.0.1:3000", Members: 1, Concurrency: 1, Requests: 1, Token: token}
	for _, tc := range []struct {
		name string
		edit func(*loadgen.Config)
	}{
		{"public host", func(c *loadgen.Config) { c.BaseURL = "http://example.com:3000" }},
		{"public IP", func(c *loadgen.Config) { c.BaseURL = "http://8.8.8.8" }},
		{"private IP", func(c *loadgen.Config) { c.BaseURL = "http://10.0.0.5:3000" }},
		{"loopback-looking name", func(c *loadgen.Config) { c.BaseURL = "http://127.0.0.1.example.com" }},
		{"unspecified", func(c *loadgen.Config) { c.BaseURL = "http://0.0.0.0:3000" }},
		{"not http", func(c *loadgen.Config) { c.BaseURL = "ftp://127.0.0.1" }},
		{"no URL", func(c *loadgen.Config) { c.BaseURL = "" }},
		{"no bound", func(c *loadgen.Config) { c.Requests = 0 }},
		{"no members", func(c *loadgen.Config) { c.Members = 0 }},
		{"no concurrency", func(c *loadgen.Config) { c.Concurrency = 0 }},
		{"no token", func(c *loadgen.Config) { c.Token = nil }},
	} {
		c := ok
		tc.edit(&c)
		if _, err := loadgen.Run(context.Background(), c, nil); err == nil {
			t.Errorf("Run(%s: %+v) = nil error, want a refusal", tc.name, c)
		}
	}
	for _, u := range []string{"http://127.0.0.1:3000", "http://localhost:3000/", "http://[::1]:3000", "https://127.0.0.2"} {
		if err := loadgen.CheckLoopback(u); err != nil {
			t.Errorf("CheckLoopback(%q) = %v, want nil", u, err)
		}
	}
}
