package faults_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dev/faults"
)

// capPolicy lets a member hold at most linCap licences, on one device, of
// titles t0..t9 that no other rule limits.
func capPolicy(t *testing.T) *licensing.Policy {
	t.Helper()
	var titles []string
	for i := range linTitles {
		titles = append(titles, fmt.Sprintf(`"t%d": {"studio": "s", "downloadable": true}`, i))
	}
	doc := fmt.Sprintf(`{
		"version": "faults-cap",
		"defaults": {"licence_duration": "30d"},
		"plans": {"basic": {"max_download_devices": 1, "max_active_per_device": 100, "max_active_per_member": %d, "max_screens": 2}},
		"studios": {"s": {}},
		"titles": {%s}
	}`, linCap, strings.Join(titles, ", "))
	p, err := licensing.ParsePolicy(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	linCap     = 3
	linTitles  = 10
	linMembers = 3
	linClients = 8  // concurrent devices' requests per member, all for device d1
	linOps     = 30 // requests per client
	// linAttempts bounds a request's sends: low, so that some requests end
	// without an answer and enter the history with an unknown outcome.
	linAttempts = 3
)

// linInput is a request of the history.
type linInput struct {
	member  string
	key     string // the request's idempotency key
	release bool
	title   string // acquire
	licence string // release
}

// linOutput is its answer: for an acquire the licence granted or the codes
// of the denial, for a release whether the licence was found; unknown when
// the request ended in an error.
type linOutput struct {
	unknown  bool
	licence  string
	denied   string // comma-separated codes
	notFound bool
}

// linState is what the sequential model knows of one member: the licence
// holding each title on the device ("" if none), and the released licences
// (sorted, comma-separated). A licence granted by a request whose answer
// was lost is named by that request.
type linState struct {
	active   [linTitles]string
	released string
}

func titleIndex(title string) int {
	var i int
	fmt.Sscanf(title, "t%d", &i)
	return i
}

func (s linState) count() int {
	n := 0
	for _, l := range s.active {
		if l != "" {
			n++
		}
	}
	return n
}

func (s linState) known(licence string) bool {
	return slices.Contains(s.active[:], licence) || slices.Contains(strings.Split(s.released, ","), licence)
}

func (s linState) release(licence string) linState {
	for i, l := range s.active {
		if l == licence {
			s.active[i] = ""
			r := append(strings.Split(s.released, ","), licence)
			if s.released == "" {
				r = r[1:]
			}
			slices.Sort(r)
			s.released = strings.Join(r, ",")
		}
	}
	return s
}

// capModel is the sequential specification: an acquisition is granted if
// the title is not already held and fewer than linCap licences are, and
// denied with the codes of the rules that refuse it otherwise; releasing a
// licence granted earlier succeeds (again, if it was released already).
// A request with an unknown outcome may have taken effect or not: the model
// applies it if it could have; since such a request never returns, the
// checker is free to place it after every other request, where its effect
// cannot be seen.
var capModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var members []string
		for _, op := range history {
			m := op.Input.(linInput).member
			if by[m] == nil {
				members = append(members, m)
			}
			by[m] = append(by[m], op)
		}
		var out [][]porcupine.Operation
		for _, m := range members {
			out = append(out, by[m])
		}
		return out
	},
	Init: func() any { return linState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(linState), input.(linInput), output.(linOutput)
		if in.release {
			switch {
			case out.unknown:
				return true, s.release(in.licence)
			case out.notFound:
				return !s.known(in.licence), s
			default:
				return s.known(in.licence), s.release(in.licence)
			}
		}
		i := titleIndex(in.title)
		var codes []string
		if s.active[i] != "" {
			codes = append(codes, licensing.CodeAlreadyOnDevice)
		}
		if s.count() >= linCap {
			codes = append(codes, licensing.CodeMemberDownloadLimit)
		}
		switch {
		case out.unknown:
			if len(codes) == 0 {
				s.active[i] = "?" + in.key // a licence no one can name
			}
			return true, s
		case out.licence != "":
			if len(codes) > 0 || s.known(out.licence) {
				return false, s
			}
			s.active[i] = out.licence
			return true, s
		default:
			return strings.Join(codes, ",") == out.denied, s
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		res := out.licence
		switch {
		case out.unknown:
			res = "?"
		case out.notFound:
			res = "not found"
		case out.denied != "":
			res = "denied " + out.denied
		}
		if in.release {
			return fmt.Sprintf("release(%s) -> %s", in.licence, res)
		}
		return fmt.Sprintf("acquire(%s) -> %s", in.title, res)
	},
}

// TestCapsAreLinearizableUnderFaults records concurrent acquisitions and
// releases of a few members under every kind of fault and checks with
// porcupine that the answers fit some order of the requests in which the
// caps held.
func TestCapsAreLinearizableUnderFaults(t *testing.T) {
	plan := faults.Plan{Throttle: 0.06, ServerError: 0.06, Reset: 0.06, LostResponse: 0.06}
	rg := newRig(t, capPolicy(t), plan, 42, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute) // a guard against a hang, not a speed check
	defer cancel()
	start := time.Now()
	clock := func() int64 { return int64(time.Since(start)) }

	var (
		mu      sync.Mutex
		history []porcupine.Operation
		counts  = map[string]int{}
	)
	var wg sync.WaitGroup
	for m := range linMembers {
		member := fmt.Sprintf("m%d", m)
		for c := range linClients {
			rng := rand.New(rand.NewPCG(uint64(m), uint64(c)))
			wg.Go(func() {
				var held []string
				for n := range linOps {
					in := linInput{member: member, key: fmt.Sprintf("%s.c%d.%d", member, c, n)}
					var cmd licensing.Command
					if len(held) > 0 && rng.IntN(5) < 3 {
						j := rng.IntN(len(held))
						in.release, in.licence = true, held[j]
						held = slices.Delete(held, j, j+1)
						cmd = licensing.Release{Member: member, Device: "d1", Licence: in.licence, Reason: licensing.ReasonDeleted}
					} else {
						in.title = fmt.Sprintf("t%d", rng.IntN(linTitles))
						cmd = licensing.Acquire{Member: member, Plan: "basic", Device: "d1", Title: in.title}
					}
					call := clock()
					o := send(ctx, rg.svc, cmd, in.key, linAttempts)
					ret := clock()
					var out linOutput
					var d *licensing.Denial
					switch {
					case o.err == nil && in.release:
					case o.err == nil:
						out.licence = o.res.Licences[0].ID
						held = append(held, out.licence)
					case errors.As(o.err, &d):
						out.denied = strings.Join(d.Codes(), ",")
					case in.release && kernel.KindOf(o.err) == kernel.KindNotFound:
						out.notFound = true
					default:
						out.unknown = true
						ret = math.MaxInt64 // it may take effect at any time from its call on
					}
					mu.Lock()
					history = append(history, porcupine.Operation{ClientId: m*linClients + c, Input: in, Call: call, Output: out, Return: ret})
					switch {
					case out.unknown:
						counts["unknown"]++
					case out.licence != "":
						counts["granted"]++
					case out.denied != "":
						counts["denied"]++
					case out.notFound:
						counts["not found"]++
					default:
						counts["released"]++
					}
					counts["retries"] += o.sends - 1
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		t.Fatalf("run did not finish: %v", err)
	}

	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(capModel, history, 20*time.Second)
	t.Logf("linearizability: %d operations checked (%d members × %d clients × %d) in %v: %s; granted %d, denied %d, released %d, not found %d, unknown outcome %d, device retries %d; DynamoDB %v",
		len(history), linMembers, linClients, linOps, time.Since(checkStart).Round(time.Millisecond), res,
		counts["granted"], counts["denied"], counts["released"], counts["not found"], counts["unknown"], counts["retries"], rg.tr.Stats())
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("faults-linearizability-%d.html", time.Now().UnixNano()))
		if err := porcupine.VisualizePath(capModel, info, path); err == nil {
			t.Logf("visualization: %s", path)
		}
		t.Fatalf("CheckOperationsVerbose = %s, want %s", res, porcupine.Ok)
	}
	if counts["granted"] == 0 || counts["denied"] == 0 {
		t.Errorf("history has %d grants and %d denials; want both, to check the caps", counts["granted"], counts["denied"])
	}
}

// The model refuses what the caps forbid, so that an Ok means something.
func TestCapModelRefusesWhatTheCapsForbid(t *testing.T) {
	acquire := func(call, ret int64, title string, out linOutput) porcupine.Operation {
		return porcupine.Operation{Input: linInput{member: "m", title: title}, Call: call, Output: out, Return: ret}
	}
	release := func(call, ret int64, licence string, out linOutput) porcupine.Operation {
		return porcupine.Operation{Input: linInput{member: "m", release: true, licence: licence}, Call: call, Output: out, Return: ret}
	}
	full := []porcupine.Operation{
		acquire(0, 1, "t0", linOutput{licence: "A"}),
		acquire(2, 3, "t1", linOutput{licence: "B"}),
		acquire(4, 5, "t2", linOutput{licence: "C"}),
	}
	tests := []struct {
		name    string
		history []porcupine.Operation
		want    bool
	}{
		{"fourth grant", append(slices.Clone(full), acquire(6, 7, "t3", linOutput{licence: "D"})), false},
		{"fourth denied", append(slices.Clone(full), acquire(6, 7, "t3", linOutput{denied: licensing.CodeMemberDownloadLimit})), true},
		{"fourth granted after a release", append(slices.Clone(full), release(6, 7, "A", linOutput{}), acquire(8, 9, "t3", linOutput{licence: "D"})), true},
		{"fourth granted while a release runs", append(slices.Clone(full), release(6, 9, "A", linOutput{}), acquire(7, 8, "t3", linOutput{licence: "D"})), true},
		{"fourth granted before a release", append(slices.Clone(full), acquire(6, 7, "t3", linOutput{licence: "D"}), release(8, 9, "A", linOutput{})), false},
		{"same title twice", []porcupine.Operation{acquire(0, 1, "t0", linOutput{licence: "A"}), acquire(2, 3, "t0", linOutput{licence: "B"})}, false},
		{"denied for a free slot", []porcupine.Operation{acquire(0, 1, "t0", linOutput{denied: licensing.CodeMemberDownloadLimit})}, false},
		{"an unknown grant fills the cap", append(slices.Clone(full[:2]), acquire(2, math.MaxInt64, "t5", linOutput{unknown: true}),
			acquire(4, 5, "t2", linOutput{denied: licensing.CodeMemberDownloadLimit})), true},
		{"an unknown grant may not have happened", append(slices.Clone(full[:2]), acquire(2, math.MaxInt64, "t5", linOutput{unknown: true}),
			acquire(4, 5, "t2", linOutput{licence: "C"})), true},
		{"release of a licence never granted", []porcupine.Operation{release(0, 1, "Z", linOutput{})}, false},
	}
	for _, tt := range tests {
		if got := porcupine.CheckOperations(capModel, tt.history); got != tt.want {
			t.Errorf("CheckOperations(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
