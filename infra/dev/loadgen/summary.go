package loadgen

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Summary is what a run measured. Status counts cover answered requests;
// a request with no answer is a transport error. So for the run and for each
// operation, the status counts plus the transport errors make the requests.
type Summary struct {
	// Requests is the number of requests counted.
	Requests int
	// Elapsed is the run's wall time; Throughput is Requests per second of it.
	Elapsed    time.Duration
	Throughput float64
	// Status counts answers by HTTP status.
	Status map[int]int
	// Ops breaks the run down by operation.
	Ops map[string]OpSummary
	// ServerErrors counts 5xx answers; TransportErrors requests with no
	// answer (refused connection, timeout, cut body).
	ServerErrors    int
	TransportErrors int
	// FirstError describes the first 5xx or transport error, for diagnosis.
	FirstError string
	// PlaybackEvents counts the uploaded playback events by result code
	// (ACCEPTED, DUPLICATE, PLAY_LIMIT_EXCEEDED…).
	PlaybackEvents map[string]int
	// Refusals counts the rules that refused requests (403 DENIED) failed.
	Refusals map[string]int
	// Latency is over every answered request; AcquireLatency over acquisitions.
	Latency        Percentiles
	AcquireLatency Percentiles
}

// OpSummary is one operation's share of a run.
type OpSummary struct {
	Requests        int
	Status          map[int]int
	TransportErrors int
	Latency         Percentiles
}

// Percentiles are latency percentiles (nearest rank).
type Percentiles struct {
	P50, P90, P99 time.Duration
}

// Errors is the number of 5xx answers and transport errors.
func (s Summary) Errors() int { return s.ServerErrors + s.TransportErrors }

// recorder collects outcomes; only the collector goroutine uses it.
type recorder struct {
	n         int
	status    map[int]int
	ops       map[string]*opRecord
	all       []time.Duration
	server    int
	transport int
	first     string
}

type opRecord struct {
	requests, transport int
	status              map[int]int
	latencies           []time.Duration
}

func (r *recorder) count() int { return r.n }

func (r *recorder) add(o outcome) {
	if r.ops == nil {
		r.status, r.ops = map[int]int{}, map[string]*opRecord{}
	}
	op := r.ops[o.op]
	if op == nil {
		op = &opRecord{status: map[int]int{}}
		r.ops[o.op] = op
	}
	r.n++
	op.requests++
	if o.err != nil && r.first == "" {
		r.first = fmt.Sprintf("%s: %v", o.op, o.err)
		if len(r.first) > 300 {
			r.first = r.first[:300] + "…"
		}
	}
	if o.status == 0 {
		r.transport++
		op.transport++
		return
	}
	r.status[o.status]++
	op.status[o.status]++
	if o.status >= 500 {
		r.server++
	}
	r.all = append(r.all, o.latency)
	op.latencies = append(op.latencies, o.latency)
}

func (r *recorder) summary(elapsed time.Duration) Summary {
	s := Summary{
		Requests: r.n, Elapsed: elapsed, Status: map[int]int{}, Ops: map[string]OpSummary{}, PlaybackEvents: map[string]int{}, Refusals: map[string]int{},
		ServerErrors: r.server, TransportErrors: r.transport, FirstError: r.first,
		Latency: percentiles(r.all),
	}
	if elapsed > 0 {
		s.Throughput = float64(r.n) / elapsed.Seconds()
	}
	for k, v := range r.status {
		s.Status[k] = v
	}
	for name, op := range r.ops {
		s.Ops[name] = OpSummary{Requests: op.requests, Status: op.status, TransportErrors: op.transport, Latency: percentiles(op.latencies)}
	}
	s.AcquireLatency = s.Ops[OpAcquire].Latency
	return s
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99)}
}

// Millis formats a duration in milliseconds with two decimals.
func Millis(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// StatusList formats status counts as "201×120, 403×8", by status.
func StatusList(status map[int]int, transport int) string {
	var keys []int
	for k := range status {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d×%d", k, status[k]))
	}
	if transport > 0 {
		parts = append(parts, fmt.Sprintf("no answer×%d", transport))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

// Markdown renders the summary as two tables: the run, then each
// operation (OpsMarkdown).
func (s Summary) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| requests | elapsed | throughput | p50 | p90 | p99 | acquire p50 | acquire p99 | 5xx | transport errors |\n")
	fmt.Fprintf(&b, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	fmt.Fprintf(&b, "| %d | %.1f s | %.1f req/s | %s | %s | %s | %s | %s | %d | %d |\n\n",
		s.Requests, s.Elapsed.Seconds(), s.Throughput, Millis(s.Latency.P50), Millis(s.Latency.P90), Millis(s.Latency.P99),
		Millis(s.AcquireLatency.P50), Millis(s.AcquireLatency.P99), s.ServerErrors, s.TransportErrors)
	b.WriteString(s.OpsMarkdown())
	return b.String()
}

// OpsMarkdown renders the operations table, then the playback results,
// the refusals and the first error, if any.
func (s Summary) OpsMarkdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| operation | requests | share | statuses | p50 | p90 | p99 |\n")
	fmt.Fprintf(&b, "| --- | ---: | ---: | --- | ---: | ---: | ---: |\n")
	for _, name := range Ops {
		op, ok := s.Ops[name]
		if !ok {
			continue
		}
		share := 0.0
		if s.Requests > 0 {
			share = 100 * float64(op.Requests) / float64(s.Requests)
		}
		fmt.Fprintf(&b, "| %s | %d | %.1f %% | %s | %s | %s | %s |\n", name, op.Requests, share,
			StatusList(op.Status, op.TransportErrors), Millis(op.Latency.P50), Millis(op.Latency.P90), Millis(op.Latency.P99))
	}
	if len(s.PlaybackEvents) > 0 {
		fmt.Fprintf(&b, "\nPlayback events: %s.\n", codeList(s.PlaybackEvents))
	}
	if len(s.Refusals) > 0 {
		fmt.Fprintf(&b, "\nRefusal rules: %s.\n", codeList(s.Refusals))
	}
	if s.FirstError != "" {
		fmt.Fprintf(&b, "\nFirst error: `%s`\n", strings.ReplaceAll(s.FirstError, "`", "'"))
	}
	return b.String()
}

// codeList formats counts by code as "ACCEPTED×40, DUPLICATE×2", by code.
func codeList(counts map[string]int) string {
	var codes []string
	for c := range counts {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s×%d", c, counts[c])
	}
	return strings.Join(parts, ", ")
}
