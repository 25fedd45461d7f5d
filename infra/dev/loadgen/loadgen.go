// Package loadgen drives the local licensing API with simulated members: a
// realistic mix of acquisitions, playback uploads, syncs, renewals, releases
// and eligibility checks, each member remembering the licences it holds. It
// measures what the API answers and how fast, and refuses to aim at anything
// but a loopback address.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config says where to send load, how much and from how many members.
type Config struct {
	// BaseURL is the API's root, e.g. http://127.0.0.1:3000; it must be on
	// loopback (an IP address that is loopback, or localhost).
	BaseURL string
	// Members is the number of simulated members.
	Members int
	// Concurrency is the number of requests in flight at once.
	Concurrency int
	// Requests bounds the run by the number of requests sent (0: no bound).
	Requests int
	// Duration bounds the run by time (0: no bound). The run stops at
	// whichever bound comes first; at least one must be set.
	Duration time.Duration
	// Seed makes the members' plans, devices and choices repeatable.
	Seed uint64
	// Token returns a bearer token for a member on a plan.
	Token func(member, plan string) string
}

// Operations, as counted in a Summary.
const (
	OpAcquire     = "acquire"
	OpPlayback    = "playback"
	OpSync        = "sync"
	OpRenew       = "renew"
	OpRelease     = "release"
	OpEligibility = "eligibility"
)

// Ops lists the operations in the order a Summary shows them.
var Ops = []string{OpAcquire, OpPlayback, OpSync, OpRenew, OpRelease, OpEligibility}

// mix is the share of each operation, in percent. Operations that need a
// held licence fall back to an acquisition when the member holds none.
var mix = []struct {
	op     string
	weight int
}{{OpAcquire, 30}, {OpPlayback, 20}, {OpSync, 20}, {OpRenew, 10}, {OpRelease, 15}, {OpEligibility, 5}}

// CheckLoopback returns an error unless raw is an http(s) URL whose host is
// a loopback IP address or localhost.
func CheckLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("base URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("base URL %q: want http or https", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("base URL %q: the load generator only targets loopback (127.0.0.1, ::1 or localhost)", raw)
	}
	return nil
}

func (c Config) check() error {
	if err := CheckLoopback(c.BaseURL); err != nil {
		return err
	}
	switch {
	case c.Members < 1:
		return errors.New("members must be at least 1")
	case c.Concurrency < 1:
		return errors.New("concurrency must be at least 1")
	case c.Requests < 0 || c.Duration < 0:
		return errors.New("requests and duration cannot be negative")
	case c.Requests == 0 && c.Duration == 0:
		return errors.New("set requests or duration (or both): the run needs a bound")
	case c.Token == nil:
		return errors.New("a token function is required")
	}
	return nil
}

// outcome is one request's result, as the collector records it.
type outcome struct {
	op      string
	status  int // 0: transport error
	latency time.Duration
	err     error
}

// Run sends load as cfg says until a bound is reached or ctx ends, calling
// progress (when not nil) after each request with the number done. A
// request cut short by ctx is not counted; Run then returns what it
// measured with ctx's error.
func Run(ctx context.Context, cfg Config, progress func(done int)) (Summary, error) {
	if err := cfg.check(); err != nil {
		return Summary{}, err
	}
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // loopback only, never through a proxy
			MaxIdleConns:        cfg.Concurrency * 2,
			MaxIdleConnsPerHost: cfg.Concurrency * 2,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	defer client.CloseIdleConnections()

	// Members are taken by one worker at a time, so each one's view of its
	// licences stays its own; their order is shuffled by the seed.
	prefix := "load-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6c6f6164))
	idle := make(chan *member, cfg.Members)
	for _, i := range rng.Perm(cfg.Members) {
		idle <- newMember(fmt.Sprintf("%s-%d", prefix, i), cfg.Seed, uint64(i), cfg.Token)
	}

	start := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	var issued atomic.Int64
	more := func() bool {
		if ctx.Err() != nil || (cfg.Requests > 0 && issued.Add(1) > int64(cfg.Requests)) {
			return false
		}
		return deadline.IsZero() || time.Now().Before(deadline)
	}

	results := make(chan outcome, cfg.Concurrency)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for more() {
				var m *member
				select {
				case m = <-idle:
				case <-ctx.Done():
					return
				}
				o := m.step(ctx, client, base)
				idle <- m
				if o.err != nil && ctx.Err() != nil {
					return // cut short by the caller, not the server's doing
				}
				results <- o
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	var rec recorder
	for o := range results {
		rec.add(o)
		if progress != nil {
			progress(rec.count())
		}
	}
	s := rec.summary(time.Since(start))
	// Every worker has returned its member: their tallies are final.
	close(idle)
	for m := range idle {
		for code, n := range m.results {
			s.PlaybackEvents[code] += n
		}
		for code, n := range m.refusals {
			s.Refusals[code] += n
		}
	}
	return s, ctx.Err()
}
