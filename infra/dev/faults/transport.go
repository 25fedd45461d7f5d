// Package faults injects DynamoDB failures at the HTTP layer, under the AWS
// SDK: throttling, server errors, connection resets and responses lost after
// the write was applied. Tests put its Transport under a DynamoDB client to
// see what the store and the service make of each, with the SDK's own
// retries in the way exactly as in production:
//
//	tr := faults.New(nil, faults.Plan{LostResponse: 0.2, Ops: []string{"PutItem"}}, seed)
//	db, err := faults.Client(ctx, endpoint, tr, 4)
//	log := dynamo.OneTable(db, table).Log
//	…
//	t.Log(tr.Stats())
package faults

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Kind is a kind of injected fault.
type Kind int

// The fault kinds, in the order a Plan's rates are drawn.
const (
	// None lets the call through untouched.
	None Kind = iota
	// Throttle answers 400 ProvisionedThroughputExceededException or
	// ThrottlingException without forwarding the call.
	Throttle
	// ServerError answers 500 InternalServerError or 503 ServiceUnavailable
	// without forwarding the call.
	ServerError
	// Reset fails the call with "connection reset by peer" without
	// forwarding it.
	Reset
	// LostResponse forwards the call, lets DynamoDB apply it, then drops the
	// answer and fails with an i/o timeout: the caller cannot tell a write
	// that landed from one that did not.
	LostResponse
	// ReplicatedConflict answers 400 ReplicatedWriteConflictException
	// without forwarding the call: on a table with multi-Region strong
	// consistency, a write to the same item in another region was under way.
	ReplicatedConflict
)

func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case Throttle:
		return "throttle"
	case ServerError:
		return "5xx"
	case Reset:
		return "reset"
	case LostResponse:
		return "lost-response"
	case ReplicatedConflict:
		return "replicated-conflict"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Plan says how often each fault is injected: each rate is the probability
// that one call gets that fault, and they must add up to at most 1.
type Plan struct {
	Throttle, ServerError, Reset, LostResponse, ReplicatedConflict float64
	// Ops limits the faults to these operations, named as in the
	// X-Amz-Target header with or without its service prefix ("PutItem",
	// "DynamoDB_20120810.Query"); empty means every operation.
	Ops []string
}

// Stats counts what a Transport saw and did.
type Stats struct {
	// Calls is every call that reached the transport; Forwarded those that
	// reached DynamoDB (untouched ones and lost responses).
	Calls, Forwarded int
	// Injected counts the faults by kind.
	Throttle, ServerError, Reset, LostResponse, ReplicatedConflict int
}

// Faults is the number of injected faults of every kind.
func (s Stats) Faults() int {
	return s.Throttle + s.ServerError + s.Reset + s.LostResponse + s.ReplicatedConflict
}

func (s Stats) String() string {
	return fmt.Sprintf("%d calls (%d forwarded), faults: throttle %d, 5xx %d, reset %d, lost-response %d, replicated-conflict %d",
		s.Calls, s.Forwarded, s.Throttle, s.ServerError, s.Reset, s.LostResponse, s.ReplicatedConflict)
}

// Transport is an http.RoundTripper that injects the faults of a Plan into
// the DynamoDB calls it carries. The schedule is deterministic for a seed:
// the n-th call that a fault may hit gets the n-th draw, so one caller at a
// time sees the same faults on every run (concurrent callers share the draws
// in arrival order). It is safe for concurrent use.
type Transport struct {
	base http.RoundTripper

	mu    sync.Mutex
	plan  Plan
	rng   *rand.Rand
	stats Stats
}

// New returns a Transport over base (the AWS SDK's default transport if
// nil) with plan and a schedule seeded by seed.
func New(base http.RoundTripper, plan Plan, seed uint64) *Transport {
	if base == nil {
		base = awshttp.NewBuildableClient().GetTransport()
	}
	return &Transport{base: base, plan: plan, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// SetPlan replaces the plan from the next call on; the schedule goes on
// from where it is.
func (t *Transport) SetPlan(p Plan) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.plan = p
}

// Stats returns what the transport has done so far.
func (t *Transport) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// TargetPrefix is the X-Amz-Target prefix of DynamoDB operations.
const TargetPrefix = "DynamoDB_20120810."

// Operation returns the DynamoDB operation a request calls ("PutItem"), or
// "" if it names none.
func Operation(r *http.Request) string {
	target := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(target, '.'); i >= 0 {
		return target[i+1:]
	}
	return target
}

// draw picks the fault for one call and, for the answered kinds, which
// variant (throttle exception, 5xx status) it takes.
func (t *Transport) draw(op string) (Kind, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats.Calls++
	p := t.plan
	if len(p.Ops) > 0 && !slices.ContainsFunc(p.Ops, func(o string) bool { return strings.TrimPrefix(o, TargetPrefix) == op }) {
		t.stats.Forwarded++
		return None, 0
	}
	u, variant := t.rng.Float64(), t.rng.IntN(2)
	k := None
	for _, c := range []struct {
		kind Kind
		rate float64
	}{{Throttle, p.Throttle}, {ServerError, p.ServerError}, {Reset, p.Reset}, {LostResponse, p.LostResponse}, {ReplicatedConflict, p.ReplicatedConflict}} {
		if u < c.rate {
			k = c.kind
			break
		}
		u -= c.rate
	}
	switch k {
	case None:
		t.stats.Forwarded++
	case Throttle:
		t.stats.Throttle++
	case ServerError:
		t.stats.ServerError++
	case Reset:
		t.stats.Reset++
	case LostResponse:
		t.stats.LostResponse++
		t.stats.Forwarded++
	case ReplicatedConflict:
		t.stats.ReplicatedConflict++
	}
	return k, variant
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	kind, variant := t.draw(Operation(r))
	switch kind {
	case Throttle:
		closeBody(r)
		code := "ProvisionedThroughputExceededException"
		msg := "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."
		if variant == 1 {
			code, msg = "ThrottlingException", "Rate of requests exceeds the allowed throughput."
		}
		return answer(r, http.StatusBadRequest, code, msg), nil
	case ServerError:
		closeBody(r)
		if variant == 1 {
			return answer(r, http.StatusServiceUnavailable, "ServiceUnavailable", "Service is unavailable."), nil
		}
		return answer(r, http.StatusInternalServerError, "InternalServerError", "Internal server error"), nil
	case ReplicatedConflict:
		closeBody(r)
		return answer(r, http.StatusBadRequest, "ReplicatedWriteConflictException",
			"One or more items in this request are being modified by a request in another Region."), nil
	case Reset:
		closeBody(r)
		return nil, &net.OpError{Op: "read", Net: "tcp", Addr: addr(r.URL.Host), Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	case LostResponse:
		resp, err := t.base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		// Read the answer through, so that DynamoDB has finished with the
		// call, and drop it.
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, &net.OpError{Op: "read", Net: "tcp", Addr: addr(r.URL.Host), Err: os.ErrDeadlineExceeded}
	}
	return t.base.RoundTrip(r)
}

// answer builds a DynamoDB error response (awsJson1_0).
func answer(r *http.Request, status int, code, msg string) *http.Response {
	body := fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, code, msg)
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-Requestid", "faults-injected")
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		Request: r,
	}
}

// closeBody closes the body of a request that is not forwarded, as a
// RoundTripper must.
func closeBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}

// addr is the remote address named in injected network errors.
type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }
