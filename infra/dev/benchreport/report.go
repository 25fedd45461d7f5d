package benchreport

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dlicense/dlicense/infra/dev/loadgen"
)

// Report is every figure of one benchmark run.
type Report struct {
	Machine Machine
	// Domain, Acquire, Streams, Realistic and Viewing are the go test
	// benchmark runs.
	Domain, Acquire, Streams, Realistic, Viewing *Bench
	// Routing is BenchmarkRouting: the realistic bursts under four routings.
	Routing *Bench
	// ColdStarts are the functions' cold starts under the Runtime
	// Interface Emulator.
	ColdStarts []ColdStart
	// Outage is the store outage drill (BenchmarkStoreOutage).
	Outage *Bench
	// Jobs is the fleet-wide jobs (BenchmarkFleetJobs).
	Jobs    *Bench
	Load    *Load
	Sizes   []Size
	Startup []Startup
	// Failures are the parts that could not be measured, with why.
	Failures []string
	Took     time.Duration
}

// target is a figure's goal: at most limit.
type target struct {
	limit float64
	text  string
}

// targets are the goals of the figures that have one, by "benchmark unit"
// (a unit without its "@…" suffix).
var targets = map[string]target{
	"BenchmarkDecideAcquireTypical ns/op":             {5000, "≤ 5 µs"},
	"BenchmarkFold10000Events ns/op":                  {5e6, "≤ 5 ms"},
	"BenchmarkFold10000EventsLight ns/op":             {5e6, "≤ 5 ms"},
	"BenchmarkAcquire RCU/acquire":                    {0.5, "≤ 0.5"},
	"BenchmarkAcquire WCU/acquire":                    {1, "≤ 1"},
	"BenchmarkAcquire roundtrips/acquire":             {2.1, "≤ 2.1"},
	"BenchmarkAcquire latency-ratio":                  {1.1, "≤ 1.1"},
	"BenchmarkRouting requests/later-acquire-sticky":  {1.05, "≤ 1.05"},
	"BenchmarkRouting requests/acquire-random":        {2, "≤ 2.0"},
	"BenchmarkStreamFunction WCU/event":               {1.25, "≤ 1.25"},
	"BenchmarkRealisticLoad RCU-mean/acquire":         {0.5, "≤ 0.5"},
	"BenchmarkRealisticLoad RCU-p99/acquire":          {1, "≤ 1"},
	"BenchmarkRealisticLoad requests/acquire-warm":    {1, "1"},
	"BenchmarkRealisticLoad p50-ratio-10000/10":       {1.1, "≤ 1.1"},
	"BenchmarkRealisticLoad snapshot-bytes@rest":      {4096, "≤ 4 KB"},
	"BenchmarkRealisticLoad stream-WCU/event":         {1, "≤ 1.0"},
	"BenchmarkViewing requests/heartbeat":             {1, "1"},
	"BenchmarkViewing WCU/heartbeat":                  {1, "≤ 1"},
	"cost heartbeat-WCU-all-in":                       {1.1, "≤ 1.1"},
	"BenchmarkViewing RCU/heartbeat":                  {0, "no read"},
	"BenchmarkViewing requests/start":                 {2, "≤ 2"},
	"BenchmarkViewing requests/resume":                {1, "1"},
	"BenchmarkViewing RCU/resume":                     {0.5, "≤ 0.5"},
	"BenchmarkViewing requests/history":               {1, "1"},
	"BenchmarkViewing requests/row":                   {1, "1"},
	"BenchmarkViewing stream-WCU/viewing-event":       {1, "≤ 1.0"},
	"BenchmarkStoreOutage hung-heartbeat-p99-µs":      {2e6, "≤ 2 s"},
	"BenchmarkStoreOutage hung-resume-p99-µs":         {2e6, "≤ 2 s"},
	"BenchmarkStoreOutage hung-licence-status-p99-µs": {2e6, "≤ 2 s"},
	"BenchmarkStoreOutage hung-acquire-p99-µs":        {2e6, "≤ 2 s"},
	"BenchmarkStoreOutage positions-lost":             {0, "0"},
}

// descriptions say what each benchmark measures.
var descriptions = map[string]string{
	"BenchmarkDecideAcquireTypical": "acquire decision, typical member (20 active licences)",
	"BenchmarkDecideAcquireHeavy":   "acquire decision, heavy member (10,000 events)",
	"BenchmarkDecideRenew":          "renewal decision, heavy member",
	"BenchmarkFold10000Events":      "fold of 10,000 events",
	"BenchmarkFold10000EventsLight": "fold of 10,000 events, 3 playback entries per upload",
	"BenchmarkSnapshotEncode":       "snapshot encode, heavy member",
	"BenchmarkSnapshotRestore":      "snapshot restore, heavy member",
	"BenchmarkAcquire": "one acquisition for a member with 10 events of history (@10) and one with 10,000 (@10000), " +
		"alternating, without the state cache (a load and a conditional write each); snapshots kept up as the stream function " +
		"does, every 4 events, so a load finds its snapshot 0 to 3 events behind: one Query of the snapshot and the newest " +
		"three events (the first page is the snapshot cadence) is the whole load",
	"BenchmarkStreamFunction": "the stream function on batches of 100 records from 20 members " +
		"(a download, four playback uploads, a deletion): snapshots and counters",
	"BenchmarkRealisticLoad": "the realistic profile: two members with a realistic 10,000-event history (six titles, keyed " +
		"requests, about a download a day for six years) and six with 10 events; 8 API instances, each with its own state cache, " +
		"handed requests by the most recently used idle one (a kind routing: BenchmarkRouting compares it with a random one); " +
		"the warm figure on an instance that has served a member's requests in a row before (its cache trusted); every member downloads a season at once " +
		"(5 to 10 titles within a second, every request keyed) then deletes it, and does so again the next day (the services' " +
		"clock moves a day between rounds, so remembered keys and idle cached states age as they would); the stream function " +
		"polls the table's stream in the background with a one-second pause, as Lambda's batching window, so snapshots lag " +
		"behind bursts, and catches up between rounds",
	"BenchmarkRouting": "the realistic profile's bursts (two members with a 10,000-event history, six with 10; 5 to 10 keyed " +
		"acquisitions a member at once, then a release; a day between rounds; the stream function polling in the background) over " +
		"8 API instances with a state cache each, under four routings, each on new instances after two unmeasured rounds: each " +
		"member sticky to one instance (the kindest, which Lambda does not promise), the most recently used idle instance, a " +
		"random instance (a member's next request meets the instance that served the last by chance only: what AWS documents), " +
		"and no cache at all; per acquisition: DynamoDB requests (and those after a member's first of a burst, which comes a day " +
		"after the last and finds no state kept), read and write units billed (a write refused by its condition included, as " +
		"DynamoDB bills it), conditional writes lost, latency, and the share of cached states judged current",
	"BenchmarkFleetJobs": "every fleet-wide job kind (infra/jobs) over 1,000 members with varied histories (plans, devices, " +
		"acquisitions over months, renewals, releases, refusals; 3.6 events a member) and the history entries of 1,000 viewers, " +
		"on DynamoDB Local, 16 segments of a parallel Scan, with 1, 2 and 4 workers (the two cores also run DynamoDB Local: " +
		"more workers each go slower); a log read eventually consistent (half the units), a snapshot and a counter recount " +
		"strongly; the rebuilds write what they rebuild, counters and engagement their recount at the end (timed); then the " +
		"what-if with 8 members at once in each slice, as the job function runs it",
	"BenchmarkStoreOutage": "the outage drill at scale, on a DynamoDB Local of its own (on disk) with the shipped deadlines " +
		"(500 ms an attempt, 1.5 s a request): 40 members each watching on a phone and holding a licence, 8 workers; each round " +
		"(30 s apart by the service's clock) every member sends a heartbeat, reads its resume point, has its licence checked " +
		"(licence-status) and, from the outage on, tries an acquisition. Two rounds with the store hung (SIGSTOP: heartbeats " +
		"202 degraded, reads stale, licences from their tokens, acquisitions 503), two with it stopped, then it is started " +
		"again on its data and every player sends heartbeats until one is accepted (recovery: from the store answering to " +
		"that heartbeat's answer). Positions lost: members whose resume point, once each player stopped where it was and the " +
		"stream function caught up, is not their player's last position",
	"BenchmarkViewing": "16 screens at once over 100 premium members and 11 titles, the stream function polling the " +
		"table's stream in the background (resume points, history, rows, engagement); each screen, member after member: " +
		"a start, 20 heartbeats (every fifth paused), a resume read from another device, a stop, a history page and the " +
		"recently watched row. Then, on a quiet table, 20 stops each followed by reads of the row until it shows the stop " +
		"(row staleness), and 20 views whose every write is handed to the stream function alone, as at real time, on a clock " +
		"that moves 30 s a heartbeat (paced: only a checkpoint heartbeat, one in sixteen, reaches the stream function, " +
		"which writes the resume point; a view's start and end add about 6 units between the history entry and engagement " +
		"transactions, the row and the resume point). DynamoDB " +
		"Local reports a start's strongly consistent BatchGetItem as under one read unit; DynamoDB bills each of its keys " +
		"(the plan's screens and the resume point) at one read unit, 5 for premium; it also reports a Query that finds " +
		"nothing (a history read before the stream function has written any) as no read unit, where DynamoDB bills half",
}

// labels name the units of the figures.
var labels = map[string]string{
	"ns/op":                 "time per iteration",
	"RCU/acquire":           "read units per acquire",
	"WCU/acquire":           "write units per acquire",
	"roundtrips/acquire":    "round trips per acquire",
	"p50-µs":                "p50 latency",
	"latency-ratio":         "p50 latency ratio, 10,000 / 10 events",
	"RCU/event":             "read units per event",
	"WCU/event":             "write units per event",
	"records/s":             "records per second through the handler",
	"snapshot-bytes":        "snapshot bytes",
	"playback-entries":      "playback entries",
	"active-licences":       "active licences",
	"licences":              "licences",
	"heartbeats/s":          "heartbeats per second, 16 screens",
	"stream-WCU/report":     "stream function write units per heartbeat or stop (resume points)",
	"RCU-mean/acquire":      "read units per acquisition, mean",
	"RCU-p99/acquire":       "read units per acquisition, p99",
	"WCU-mean/acquire":      "write units per acquisition, mean",
	"requests-mean/acquire": "DynamoDB requests per acquisition, mean",
	"requests-p99/acquire":  "DynamoDB requests per acquisition, p99",
	"requests/acquire-warm": "DynamoDB requests per acquisition, warm instance, no contention",
	"p50-ratio-10000/10":    "acquisition p50 latency, 10,000-event members ÷ 10-event ones",
	"snapshot-bytes@rest":   "snapshot of a 10,000-event member, as seeded (bytes)",
	"snapshot-bytes@after":  "snapshot of a 10,000-event member after the bursts (bytes)",
	"stream-WCU/event":      "stream function write units per event (snapshots, counters)",
	"acquisitions":          "acquisitions measured",
	"positions-lost":        "members whose resume point is not their player's last position",
	"members":               "members watching",
}

func label(unit string) string {
	if l, ok := labels[unit]; ok {
		return l
	}
	for _, kind := range []struct{ prefix, text string }{
		{"requests/", "DynamoDB requests per "}, {"RCU/", "read units per "}, {"WCU/", "write units per "},
	} {
		if op, ok := strings.CutPrefix(unit, kind.prefix); ok {
			return kind.text + op
		}
	}
	if op, p, ok := strings.Cut(strings.TrimSuffix(unit, "-µs"), "-p"); ok && strings.HasSuffix(unit, "-µs") {
		return op + " p" + p + " latency"
	}
	return unit
}

// MaxColdStart is the goal for a function's cold start here: process start
// to first answer, median.
const MaxColdStart = 50 * time.Millisecond

func coldVerdict(d time.Duration) string {
	if d > MaxColdStart {
		return "≤ 50 ms (not met)"
	}
	return "≤ 50 ms (met)"
}

// MaxBootstrap is Lambda's limit on a function's package, unzipped
// (250 MB); a bootstrap's size is otherwise no goal: no CPU is traded for
// bytes.
const MaxBootstrap = 250 << 20

// verdict says whether value meets the figure's target (within 1 %, the
// rounding of the figures shown).
func verdict(bench, unit string, values ...float64) string {
	t, ok := targets[bench+" "+unit]
	if !ok {
		return "—"
	}
	for _, v := range values {
		if v > t.limit*1.01 {
			return t.text + " (not met)"
		}
	}
	return t.text + " (met)"
}

// value formats a figure for its unit.
func value(v float64, unit string) string {
	switch {
	case unit == "ns/op":
		return duration(v)
	case strings.HasSuffix(unit, "-µs"):
		return duration(v * 1e3)
	case unit == "B/op":
		return bytesOf(v)
	case v >= 100:
		return grouped(int64(math.Round(v)))
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func duration(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
	return fmt.Sprintf("%.2f s", ns/1e9)
}

func bytesOf(b float64) string {
	switch {
	case b < 1e3:
		return fmt.Sprintf("%.0f B", b)
	case b < 1e6:
		return fmt.Sprintf("%.1f KB", b/1e3)
	}
	return fmt.Sprintf("%.1f MB", b/1e6)
}

// shortDuration writes d as time.Duration does, without zero trailing
// units: 1m rather than 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// grouped writes n with thousands separators.
func grouped(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// find returns the named benchmark's result from b.
func find(b *Bench, name string) (Result, bool) {
	if b == nil {
		return Result{}, false
	}
	for _, r := range b.Results {
		if r.Name == name {
			return r, true
		}
	}
	return Result{}, false
}

// Markdown renders the report.
func (r Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by `make bench` (`go run ./infra/dev/cmd/dlicense-benchreport -write docs/benchmarks.md`); ")
	b.WriteString("run it again rather than editing this file.\n\n")
	fmt.Fprintf(&b, "| | |\n| --- | --- |\n| date | %s |\n| machine | %s, %d cores (%s) |\n| Go | %s |\n| whole run | %s |\n\n",
		m.Date.Format("2006-01-02 15:04 MST"), m.CPU, m.Cores, m.OS, m.GoVersion, r.Took.Round(time.Second))
	b.WriteString("Figures move by 10–30 % between runs on a shared machine. A figure within 1 % of its target counts as met.\n\n")
	r.headlines(&b)
	r.domain(&b)
	if r.Acquire != nil {
		b.WriteString("## DynamoDB Local: acquire\n\n")
		benchSection(&b, r.Acquire)
	}
	if r.Streams != nil {
		b.WriteString("## DynamoDB Local: stream function\n\n")
		benchSection(&b, r.Streams)
	}
	if r.Realistic != nil {
		b.WriteString("## DynamoDB Local: the realistic profile\n\n")
		benchSection(&b, r.Realistic)
	}
	if r.Routing != nil {
		b.WriteString("## DynamoDB Local: routing and the state cache\n\n")
		benchSection(&b, r.Routing)
	}
	if r.Viewing != nil {
		b.WriteString("## DynamoDB Local: viewing\n\n")
		benchSection(&b, r.Viewing)
	}
	if r.Outage != nil {
		b.WriteString("## DynamoDB Local: a store outage\n\n")
		benchSection(&b, r.Outage)
	}
	if r.Jobs != nil {
		b.WriteString("## DynamoDB Local: fleet-wide jobs\n\n")
		r.jobsSection(&b)
		r.jobProjection(&b)
	}
	r.costSection(&b)
	r.load(&b)
	if len(r.Sizes) > 0 {
		b.WriteString("## Bootstrap sizes\n\n`make build`: linux/arm64, stripped, `-tags lambda.norpc,nethttpomithttp2`, built as usual otherwise (see the Makefile).\n\n| function | bootstrap | target |\n| --- | ---: | --- |\n")
		for _, s := range r.Sizes {
			met := "≤ 250 MB, Lambda's limit unzipped (met)"
			if s.Bytes > MaxBootstrap {
				met = "≤ 250 MB, Lambda's limit unzipped (not met)"
			}
			fmt.Fprintf(&b, "| %s | %.3f MB (%s bytes) | %s |\n", s.Function, float64(s.Bytes)/1e6, grouped(s.Bytes), met)
		}
		b.WriteString("\n")
	}
	if len(r.ColdStarts) > 0 {
		b.WriteString("## Cold starts under the Lambda Runtime Interface Emulator\n\n")
		b.WriteString("Each function's bootstrap, built as `sam build` builds it (the Makefile's Lambda build, for this machine's ")
		b.WriteString("architecture), started in the AWS Lambda Runtime Interface Emulator (what `sam local` runs in its containers) ")
		b.WriteString("on DynamoDB Local, and invoked at once: from starting the emulator's process to the function's first answer ")
		b.WriteString("(the emulator's own start, the Go runtime's, the handler's wiring and the first DynamoDB requests on new ")
		b.WriteString("connections), a new process each run; then a second invocation, warm. `infra/invoke` runs it.\n\n")
		b.WriteString("| function | event | cold, median | cold, slowest | warm, median | runs | target |\n| --- | --- | ---: | ---: | ---: | ---: | --- |\n")
		for _, c := range r.ColdStarts {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %s |\n", c.Function, c.Event, duration(float64(c.Median)), duration(float64(c.Max)),
				duration(float64(c.Warm)), c.Runs, coldVerdict(c.Median))
		}
		b.WriteString("\n")
	}
	if len(r.Startup) > 0 {
		b.WriteString("## Handler initialisation\n\nBuilding each function's handler as its `main` does, in one process (no request made; ")
		b.WriteString("process start and the Lambda runtime aside). The first run pays one-off initialisation.\n\n")
		b.WriteString("| what | median | first run | slowest | runs |\n| --- | ---: | ---: | ---: | ---: |\n")
		for _, s := range r.Startup {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %d |\n", s.What, duration(float64(s.Median)), duration(float64(s.First)), duration(float64(s.Max)), s.Runs)
		}
		b.WriteString("\n")
	}
	if len(r.Failures) > 0 {
		b.WriteString("## Not measured\n\n")
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
		b.WriteString("\n")
	}
	r.raw(&b)
	return b.String()
}

func (r Report) headlines(b *strings.Builder) {
	type row struct{ figure, value, target string }
	var rows []row
	if x, ok := find(r.Domain, "BenchmarkDecideAcquireTypical"); ok {
		v, _ := x.Get("ns/op")
		rows = append(rows, row{"acquire decision, typical member", duration(v), verdict(x.Name, "ns/op", v)})
	}
	for _, name := range []string{"BenchmarkFold10000EventsLight", "BenchmarkFold10000Events"} {
		if x, ok := find(r.Domain, name); ok {
			v, _ := x.Get("ns/op")
			e, _ := x.Get("playback-entries")
			rows = append(rows, row{fmt.Sprintf("fold of 10,000 events (%s playback entries)", grouped(int64(e))), duration(v), verdict(x.Name, "ns/op", v)})
		}
	}
	if x, ok := find(r.Acquire, "BenchmarkAcquire"); ok {
		small, _ := x.Get("p50-µs@10")
		large, _ := x.Get("p50-µs@10000")
		ratio, _ := x.Get("latency-ratio")
		rows = append(rows, row{"acquire on DynamoDB Local, cold, p50 (10 / 10,000 events of history)",
			duration(small*1e3) + " / " + duration(large*1e3), "ratio " + verdict(x.Name, "latency-ratio", ratio)})
		rcu, _ := x.Get("RCU/acquire@10000")
		wcu, _ := x.Get("WCU/acquire@10000")
		rows = append(rows, row{"read / write units per acquire, cold (no cache), 10,000 events", value(rcu, "") + " / " + value(wcu, ""),
			verdict(x.Name, "RCU/acquire", rcu) + ", " + verdict(x.Name, "WCU/acquire", wcu)})
	}
	if x, ok := find(r.Streams, "BenchmarkStreamFunction"); ok {
		w, _ := x.Get("WCU/event")
		rows = append(rows, row{"stream function write units per event", value(w, ""), verdict(x.Name, "WCU/event", w)})
	}
	if x, ok := find(r.Realistic, "BenchmarkRealisticLoad"); ok {
		get := func(unit string) float64 { v, _ := x.Get(unit); return v }
		rows = append(rows,
			row{"realistic profile: read units per acquisition, mean / p99", value(get("RCU-mean/acquire"), "") + " / " + value(get("RCU-p99/acquire"), ""),
				verdict(x.Name, "RCU-mean/acquire", get("RCU-mean/acquire")) + ", " + verdict(x.Name, "RCU-p99/acquire", get("RCU-p99/acquire"))},
			row{"realistic profile: DynamoDB requests per acquisition, warm instance", value(get("requests/acquire-warm"), ""), verdict(x.Name, "requests/acquire-warm", get("requests/acquire-warm"))},
			row{"realistic profile: acquisition p50, 10,000 ÷ 10 events", value(get("p50-ratio-10000/10"), ""), verdict(x.Name, "p50-ratio-10000/10", get("p50-ratio-10000/10"))},
			row{"realistic 10,000-event member's snapshot, at rest / after a burst", fmt.Sprintf("%s / %s", bytesOf(get("snapshot-bytes@rest")), bytesOf(get("snapshot-bytes@after"))),
				verdict(x.Name, "snapshot-bytes@rest", get("snapshot-bytes@rest"))},
			row{"realistic profile: stream function write units per event", value(get("stream-WCU/event"), ""), verdict(x.Name, "stream-WCU/event", get("stream-WCU/event"))})
	}
	if x, ok := find(r.Routing, "BenchmarkRouting"); ok {
		get := func(unit string) float64 { v, _ := x.Get(unit); return v }
		four := func(unit string) string {
			return fmt.Sprintf("%s / %s / %s / %s", value(get(unit+"-sticky"), ""), value(get(unit+"-mru"), ""), value(get(unit+"-random"), ""), value(get(unit+"-nocache"), ""))
		}
		lostVerdict := "no more than without a cache (met)"
		if get("lost/acquire-random") > get("lost/acquire-nocache") {
			lostVerdict = "no more than without a cache (not met)"
		}
		rows = append(rows,
			row{"8 instances, by routing (sticky / most recently used / random / no cache): DynamoDB requests per acquisition", four("requests/acquire"),
				verdict(x.Name, "requests/acquire-random", get("requests/acquire-random")) + " random"},
			row{"… the same after a member's first acquisition of a burst", four("requests/later-acquire"),
				verdict(x.Name, "requests/later-acquire-sticky", get("requests/later-acquire-sticky")) + " sticky"},
			row{"… read units / write units billed per acquisition (refused writes included)", four("RCU/acquire") + "; " + four("WCU/acquire"), "—"},
			row{"… conditional writes lost per acquisition", four("lost/acquire"), lostVerdict},
			row{"… acquisition p50 / p99", fmt.Sprintf("%s / %s; %s / %s; %s / %s; %s / %s",
				duration(get("p50-µs-sticky")*1e3), duration(get("p99-µs-sticky")*1e3), duration(get("p50-µs-mru")*1e3), duration(get("p99-µs-mru")*1e3),
				duration(get("p50-µs-random")*1e3), duration(get("p99-µs-random")*1e3), duration(get("p50-µs-nocache")*1e3), duration(get("p99-µs-nocache")*1e3)), "—"})
	}
	if x, ok := find(r.Viewing, "BenchmarkViewing"); ok {
		get := func(unit string) float64 { v, _ := x.Get(unit); return v }
		rows = append(rows,
			row{"heartbeat: DynamoDB requests / write units / read units", value(get("requests/heartbeat"), "") + " / " + value(get("WCU/heartbeat"), "") + " / " + value(get("RCU/heartbeat"), ""),
				verdict(x.Name, "requests/heartbeat", get("requests/heartbeat")) + ", " + verdict(x.Name, "WCU/heartbeat", get("WCU/heartbeat")) + ", " + verdict(x.Name, "RCU/heartbeat", get("RCU/heartbeat"))},
			row{"start (with the screens limit): DynamoDB requests", value(get("requests/start"), ""), verdict(x.Name, "requests/start", get("requests/start"))},
			row{"resume read: DynamoDB requests / read units", value(get("requests/resume"), "") + " / " + value(get("RCU/resume"), ""),
				verdict(x.Name, "requests/resume", get("requests/resume")) + ", " + verdict(x.Name, "RCU/resume", get("RCU/resume"))},
			row{"history page (20 entries): DynamoDB requests / read units", value(get("requests/history"), "") + " / " + value(get("RCU/history"), ""),
				verdict(x.Name, "requests/history", get("requests/history"))},
			row{"recently watched row: DynamoDB requests / read units", value(get("requests/row"), "") + " / " + value(get("RCU/row"), ""),
				verdict(x.Name, "requests/row", get("requests/row"))},
			row{"stream function write units per viewing event (resume, history, row, counts), in the benchmark / each write alone", value(get("stream-WCU/viewing-event"), "") + " / " + value(get("stream-WCU/viewing-event-paced"), ""),
				verdict(x.Name, "stream-WCU/viewing-event", get("stream-WCU/viewing-event")) + " in the benchmark; " +
					verdict(x.Name, "stream-WCU/viewing-event", get("stream-WCU/viewing-event-paced")) + " with each write alone"},
			row{"row staleness, from a stop to the row showing it (poller pause 250 ms), p50 / p99", duration(get("row-staleness-p50-µs")*1e3) + " / " + duration(get("row-staleness-p99-µs")*1e3), "—"},
			row{"16 screens over 100 members on DynamoDB Local", fmt.Sprintf("%.0f heartbeats/s; heartbeat p50 %s, p99 %s",
				get("heartbeats/s"), duration(get("heartbeat-p50-µs")*1e3), duration(get("heartbeat-p99-µs")*1e3)), "—"})
	}
	if x, ok := find(r.Outage, "BenchmarkStoreOutage"); ok {
		get := func(unit string) float64 { v, _ := x.Get(unit); return v }
		var ms, verdicts []string
		for _, route := range []string{"heartbeat", "resume", "licence-status", "acquire"} {
			unit := "hung-" + route + "-p99-µs"
			ms = append(ms, duration(get(unit)*1e3))
			verdicts = append(verdicts, verdict(x.Name, unit, get(unit)))
		}
		rows = append(rows,
			row{"store hung: time to answer, p99 (heartbeat 202 / resume stale / licence status from token / acquire 503)", strings.Join(ms, " / "), strings.Join(slices.Compact(verdicts), ", ")},
			row{"store back: its return to each player's first accepted heartbeat, p50 / p99", duration(get("recovery-heartbeat-p50-µs")*1e3) + " / " + duration(get("recovery-heartbeat-p99-µs")*1e3), "—"},
			row{"positions lost in the outage", value(get("positions-lost"), ""), verdict(x.Name, "positions-lost", get("positions-lost"))})
	}
	if x, ok := find(r.Jobs, "BenchmarkFleetJobs"); ok {
		get := func(unit string) float64 { v, _ := x.Get(unit); return v }
		here, aws := r.projections()
		rows = append(rows,
			row{"fleet what-if on DynamoDB Local: members/s per worker at 1 / 2 / 4 workers; 8 members at once a slice; read units a member", fmt.Sprintf("%.0f / %.0f / %.0f; %.0f; %.2f",
				get("whatif-members/s-per-worker@1"), get("whatif-members/s-per-worker@2"), get("whatif-members/s-per-worker@4"), get("whatif-members/s-8-at-once@1"), get("whatif-RCU/member")), "—"},
			row{"fleet what-if of 100 M members at MaxConcurrency 1,000, projected at this machine's rate / at 5 ms a DynamoDB request: wall time / cost",
				fmt.Sprintf("%s / $%.2f; %s / $%.2f", shortDuration(here.Wall.Round(time.Second)), here.Total(), shortDuration(aws.Wall.Round(time.Second)), aws.Total()),
				verdictJob(here, aws)})
	}
	if x, ok := find(r.Viewing, "BenchmarkViewing"); ok {
		if rcu, ok := x.Get("sweep-RCU/open-view"); ok {
			wcu, _ := x.Get("sweep-WCU/close")
			p50, _ := x.Get("sweep-shard-p50-µs")
			rows = append(rows, row{"sweep of silent views (every minute): read units per open view / write units per view closed / time a shard, p50",
				fmt.Sprintf("%.2f / %.2f / %s", rcu, wcu, duration(p50*1e3)), "—"})
		}
	}
	if cost, wcu, ok := r.viewingHourCost(); ok {
		rows = append(rows, row{"heartbeat write units all-in (the API's write and the stream function's, each heartbeat alone)", value(wcu, ""),
			verdict("cost", "heartbeat-WCU-all-in", wcu)},
			row{"cost of a million viewing hours (API Gateway, Lambda, DynamoDB; the cost model of docs/performance.md)", fmt.Sprintf("$%.2f", cost), "—"})
	}
	if r.Load != nil {
		for _, l := range r.Load.Levels {
			s := l.Summary
			rows = append(rows, row{fmt.Sprintf("local API on DynamoDB Local, concurrency %d", l.Concurrency),
				fmt.Sprintf("%.0f req/s; acquire p50 %s, p99 %s", s.Throughput, loadgen.Millis(s.AcquireLatency.P50), loadgen.Millis(s.AcquireLatency.P99)), "—"})
		}
	}
	if len(r.Sizes) > 0 {
		var parts []string
		met := "≤ 250 MB each, Lambda's limit (met)"
		for _, s := range r.Sizes {
			parts = append(parts, fmt.Sprintf("%s %.3f MB", s.Function, float64(s.Bytes)/1e6))
			if s.Bytes > MaxBootstrap {
				met = "≤ 250 MB each, Lambda's limit (not met)"
			}
		}
		rows = append(rows, row{"bootstrap sizes (arm64, stripped)", strings.Join(parts, ", "), met})
	}
	if len(r.ColdStarts) > 0 {
		var parts []string
		met := true
		for _, c := range r.ColdStarts {
			parts = append(parts, fmt.Sprintf("%s %s", c.Function, duration(float64(c.Median))))
			met = met && c.Median <= MaxColdStart
		}
		v := coldVerdict(0)
		if !met {
			v = coldVerdict(MaxColdStart + 1)
		}
		rows = append(rows, row{"cold start under the Runtime Interface Emulator, process start to first answer (median)", strings.Join(parts, ", "), v})
	}
	for _, s := range r.Startup {
		if strings.Contains(s.What, "DynamoDB store") {
			rows = append(rows, row{"API handler initialisation (median)", duration(float64(s.Median)), "—"})
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("## Headlines\n\n| figure | value | target |\n| --- | --- | --- |\n")
	for _, x := range rows {
		fmt.Fprintf(b, "| %s | %s | %s |\n", x.figure, x.value, x.target)
	}
	b.WriteString("\n")
}

func (r Report) domain(b *strings.Builder) {
	if r.Domain == nil {
		return
	}
	b.WriteString("## Domain\n\n")
	fmt.Fprintf(b, "`%s`\n\n", r.Domain.Command)
	if r.Domain.Skipped != "" {
		fmt.Fprintf(b, "Not run: %s.\n\n", r.Domain.Skipped)
		return
	}
	b.WriteString("| benchmark | measures | time/op | figures | memory/op | target |\n| --- | --- | ---: | --- | ---: | --- |\n")
	for _, x := range r.Domain.Results {
		var figures []string
		for _, m := range x.Metrics {
			if m.Unit != "ns/op" && m.Unit != "B/op" && m.Unit != "allocs/op" {
				figures = append(figures, value(m.Value, m.Unit)+" "+label(m.Unit))
			}
		}
		ns, _ := x.Get("ns/op")
		mem := "—"
		if by, ok := x.Get("B/op"); ok {
			allocs, _ := x.Get("allocs/op")
			mem = fmt.Sprintf("%s, %s allocs", bytesOf(by), grouped(int64(allocs)))
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", strings.TrimPrefix(x.Name, "Benchmark"), descriptions[x.Name], duration(ns),
			orDash(strings.Join(figures, ", ")), mem, verdict(x.Name, "ns/op", ns))
	}
	b.WriteString("\n")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// benchSection renders benchmarks with custom metrics: metrics with an
// "@case" suffix as a table with a column per case, the others as a list.
func benchSection(b *strings.Builder, bench *Bench) {
	fmt.Fprintf(b, "`%s`\n\n", bench.Command)
	if bench.Skipped != "" {
		fmt.Fprintf(b, "Not run: %s.\n\n", bench.Skipped)
		return
	}
	for _, x := range bench.Results {
		if d := descriptions[x.Name]; d != "" {
			fmt.Fprintf(b, "`%s`: %s.\n\n", x.Name, d)
		}
		var cases, units []string
		byCase := map[string]map[string]float64{}
		var plain []Metric
		for _, m := range x.Metrics {
			unit, c, ok := strings.Cut(m.Unit, "@")
			if !ok {
				plain = append(plain, m)
				continue
			}
			if !slices.Contains(cases, c) {
				cases = append(cases, c)
			}
			if !slices.Contains(units, unit) {
				units = append(units, unit)
			}
			if byCase[unit] == nil {
				byCase[unit] = map[string]float64{}
			}
			byCase[unit][c] = m.Value
		}
		if len(cases) > 0 {
			b.WriteString("| figure |")
			for _, c := range cases {
				fmt.Fprintf(b, " @%s |", c)
			}
			b.WriteString(" target |\n| --- |" + strings.Repeat(" ---: |", len(cases)) + " --- |\n")
			for _, u := range units {
				fmt.Fprintf(b, "| %s |", label(u))
				var vs []float64
				for _, c := range cases {
					v, ok := byCase[u][c]
					if !ok {
						b.WriteString(" — |")
						continue
					}
					vs = append(vs, v)
					fmt.Fprintf(b, " %s |", value(v, u))
				}
				fmt.Fprintf(b, " %s |\n", verdict(x.Name, u, vs...))
			}
			b.WriteString("\n")
		}
		b.WriteString("| figure | value | target |\n| --- | ---: | --- |\n")
		for _, m := range plain {
			if m.Unit == "B/op" || m.Unit == "allocs/op" {
				continue
			}
			fmt.Fprintf(b, "| %s | %s | %s |\n", label(m.Unit), value(m.Value, m.Unit), verdict(x.Name, m.Unit, m.Value))
		}
		fmt.Fprintf(b, "| iterations | %s | — |\n\n", grouped(x.Iterations))
	}
}

func (r Report) load(b *strings.Builder) {
	if r.Load == nil {
		return
	}
	o := r.Load.Options
	b.WriteString("## Load on the local API (DynamoDB Local)\n\n")
	if r.Load.Skipped != "" {
		fmt.Fprintf(b, "Not run: %s.\n\n", r.Load.Skipped)
		return
	}
	fmt.Fprintf(b, "`infra/dev/loadgen` against the local API served from the same process on DynamoDB Local, with the stream function polling "+
		"the table's stream (as `make run-dynamodb`): %d members, at most %s requests or %s per level, after %d warm-up requests. "+
		"The mix: 30 %% acquire, 20 %% playback upload, 20 %% sync, 10 %% renew, 15 %% release, 5 %% eligibility "+
		"(operations needing a licence acquire one first). Load generator, API and DynamoDB Local share the machine's cores.\n\n",
		o.Members, grouped(int64(o.Requests)), shortDuration(o.Duration), o.Warmup)
	b.WriteString("| concurrency | requests | throughput | p50 | p90 | p99 | acquire p50 | acquire p99 | answers | 5xx + transport errors |\n")
	b.WriteString("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n")
	for _, l := range r.Load.Levels {
		s := l.Summary
		fmt.Fprintf(b, "| %d | %s | %.0f req/s | %s | %s | %s | %s | %s | %s | %d |\n", l.Concurrency, grouped(int64(s.Requests)), s.Throughput,
			loadgen.Millis(s.Latency.P50), loadgen.Millis(s.Latency.P90), loadgen.Millis(s.Latency.P99),
			loadgen.Millis(s.AcquireLatency.P50), loadgen.Millis(s.AcquireLatency.P99), loadgen.StatusList(s.Status, s.TransportErrors), s.Errors())
	}
	b.WriteString("\n")
	if n := len(r.Load.Levels); n > 0 {
		last := r.Load.Levels[n-1]
		fmt.Fprintf(b, "By operation, at concurrency %d:\n\n", last.Concurrency)
		b.WriteString(last.Summary.OpsMarkdown())
		b.WriteString("\n")
	}
}

func (r Report) raw(b *strings.Builder) {
	var lines []string
	for _, bench := range []*Bench{r.Domain, r.Acquire, r.Streams, r.Realistic, r.Routing, r.Viewing} {
		if bench == nil {
			continue
		}
		for _, x := range bench.Results {
			lines = append(lines, x.Line)
		}
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("## Raw benchmark lines\n\n```\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	b.WriteString("```\n")
}
