package faults_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dev/faults"
)

// Titles of the shipped policy that no cap or quota limits for one member
// (open-reel, meridian and harbour titles available at t0).
var freeTitles = []string{"tt-first-light", "tt-paper-moons", "tt-meridian-one", "tt-low-tide", "tt-breakwater", "tt-salt-and-rope"}

const (
	chaosMembers = 6
	// chaosDevices is the premium plan's device limit: every device of a
	// member acquires every free title, so every acquisition is due a grant.
	chaosDevices = 6
)

// chaosRun is what the devices did in one run.
type chaosRun struct {
	mu       sync.Mutex
	outcomes map[string][]outcome // by member
	// resent counts successful requests sent again with the same key, and
	// firstAnswer those answered with the first answer.
	resent, firstAnswer int
	wrong               []string
}

func (r *chaosRun) record(member string, o outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes[member] = append(r.outcomes[member], o)
}

// device acquires every free title on one device, in its own order,
// sends one success in three again with the same key (as a device whose
// answer got lost on the way back does), and releases every third licence.
func (r *chaosRun) device(ctx context.Context, svc *licensing.Service, member, device string, rng *rand.Rand) {
	titles := append([]string(nil), freeTitles...)
	rng.Shuffle(len(titles), func(i, j int) { titles[i], titles[j] = titles[j], titles[i] })
	for i, title := range titles {
		cmd := licensing.Acquire{Member: member, Plan: "premium", Device: device, Title: title}
		key := fmt.Sprintf("%s.%s.acquire.%s", member, device, title)
		o := send(ctx, svc, cmd, key, deviceAttempts)
		r.record(member, o)
		if o.err != nil {
			continue
		}
		licence := o.res.Licences[0].ID
		if rng.IntN(3) == 0 {
			again := send(ctx, svc, cmd, key, deviceAttempts)
			r.mu.Lock()
			r.resent++
			switch {
			case again.err != nil:
				r.wrong = append(r.wrong, fmt.Sprintf("resent %s: %v", key, again.err))
			case !again.res.Replayed || again.res.Version != o.res.Version || len(again.res.Licences) != 1 || again.res.Licences[0].ID != licence:
				r.wrong = append(r.wrong, fmt.Sprintf("resent %s = v%d %v replayed %v, want v%d %s replayed",
					key, again.res.Version, again.res.Licences, again.res.Replayed, o.res.Version, licence))
			default:
				r.firstAnswer++
			}
			r.mu.Unlock()
		}
		if i%3 == 2 {
			rel := licensing.Release{Member: member, Device: device, Licence: licence, Reason: licensing.ReasonDeleted}
			r.record(member, send(ctx, svc, rel, fmt.Sprintf("%s.%s.release.%s", member, device, licence), deviceAttempts))
		}
	}
}

// TestServiceUnderFaults runs many devices of many members against the
// service on DynamoDB Local while one kind of fault, then all of them, hit
// its DynamoDB calls; then it reads every log back and checks that no
// licence was granted twice and no answered request is missing.
func TestServiceUnderFaults(t *testing.T) {
	tests := []struct {
		name string
		plan faults.Plan
	}{
		{"throttle", faults.Plan{Throttle: 0.3}},
		{"5xx", faults.Plan{ServerError: 0.3}},
		{"reset", faults.Plan{Reset: 0.3}},
		{"lost-response", faults.Plan{LostResponse: 0.3}},
		// Another region writing the same version: a lost race (catch up,
		// decide again), never an error.
		{"replicated-conflict", faults.Plan{ReplicatedConflict: 0.3, Ops: []string{"PutItem"}}},
		{"mixed", faults.Plan{Throttle: 0.08, ServerError: 0.08, Reset: 0.08, LostResponse: 0.08}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rg := newRig(t, licensing.DefaultPolicy(), tt.plan, uint64(100+i), 4)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute) // a guard against a hang, not a speed check
			defer cancel()
			run := &chaosRun{outcomes: map[string][]outcome{}}
			var wg sync.WaitGroup
			for m := range chaosMembers {
				for d := range chaosDevices {
					member, device := fmt.Sprintf("m%d", m), fmt.Sprintf("d%d", d)
					rng := rand.New(rand.NewPCG(uint64(i), uint64(m*chaosDevices+d)))
					wg.Go(func() { run.device(ctx, rg.svc, member, device, rng) })
				}
			}
			wg.Wait()
			if err := ctx.Err(); err != nil {
				t.Fatalf("run did not finish: %v", err)
			}

			var a audit
			requests, sends, acquires, answered, replayed := 0, 0, 0, 0, 0
			retriedAfter := map[kernel.Kind]int{}
			gaveUp := map[kernel.Kind]int{}
			for member, outs := range run.outcomes {
				a.add(auditMember(t, rg.clean, member, outs))
				for _, o := range outs {
					requests++
					sends += o.sends
					if _, ok := o.cmd.(licensing.Acquire); ok {
						acquires++
						if o.err == nil {
							answered++
						}
					}
					if o.err == nil && o.sends > 1 && o.res.Replayed {
						replayed++
					}
					for k, n := range o.retriedAfter {
						retriedAfter[k] += n
					}
					if o.err != nil {
						gaveUp[kernel.KindOf(o.err)]++
					}
				}
			}
			s := rg.tr.Stats()
			requests += run.resent
			t.Logf("%s: %d requests (%d Execute calls, %d resent with their key, %d got the first answer); DynamoDB %v; "+
				"licences granted %d, expected %d (answered %d); released %d; device retries after %s, %d answered by replay; gave up %d (%d landed, kinds %s); duplicates %d; lost %d",
				tt.name, requests, sends+run.resent, run.resent, run.firstAnswer, s,
				a.granted, acquires, answered, a.released, kindCounts(retriedAfter), replayed, a.gaveUp, a.landed, kindCounts(gaveUp), len(a.duplicates), len(a.lost))

			for _, d := range a.duplicates {
				t.Errorf("duplicate: %s", d)
			}
			for _, l := range a.lost {
				t.Errorf("lost: %s", l)
			}
			for _, w := range run.wrong {
				t.Errorf("idempotent retry: %s", w)
			}
			if s.Faults() == 0 {
				t.Errorf("no fault was injected")
			}
			// Every acquisition is due a grant: those answered, and of those
			// the devices gave up on, the ones that landed.
			if want := answered + a.landed; a.granted != want {
				t.Errorf("log holds %d grants, want %d (answered %d + landed without answer %d)", a.granted, want, answered, a.landed)
			}
			if a.gaveUp == 0 && a.granted != acquires {
				t.Errorf("log holds %d grants, want one per acquisition (%d)", a.granted, acquires)
			}
		})
	}
}
