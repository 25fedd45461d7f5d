package deploytest

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/dlicense/dlicense/infra/changestream"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
)

// streamFunction is the function that keeps snapshots up from the table's
// change stream.
const streamFunction = "StreamsFunction"

// The stream function may only see INSERTs of event items and INSERTs or
// MODIFYs of screen items (heartbeats) and of erasures under way: never
// snapshots, counters, resume points, history or its marking an erasure
// done (its own writes), TTL removals or anything else. Each filter of its
// event must pin the item kind to one of these and the change to those
// allowed for it (Lambda passes a record matching any filter), and every
// kind must have a filter.
var allowedChanges = map[string][]string{
	"event":   {"INSERT"},
	"screen":  {"INSERT", "MODIFY"},
	"erasure": {"INSERT", "MODIFY"},
}

// streamEvent is one DynamoDB event of a function: a SAM event, or an
// event source mapping of its own (the regions layout's viewing stream).
type streamEvent struct {
	function, event string
	props           *yaml.Node
	// stream is the stream it reads (Stream, or EventSourceArn).
	stream *yaml.Node
}

func (d *deployment) streamEvents() []streamEvent {
	var out []streamEvent
	ids, fns := d.resources("AWS::Serverless::Function")
	for i, fn := range fns {
		names, evs := entries(get(fn, "Properties", "Events"))
		for j, ev := range evs {
			if value(get(ev, "Type")) == "DynamoDB" {
				p := get(ev, "Properties")
				out = append(out, streamEvent{function: ids[i], event: names[j], props: p, stream: get(p, "Stream")})
			}
		}
	}
	ids, maps := d.resources("AWS::Lambda::EventSourceMapping")
	for i, m := range maps {
		p := get(m, "Properties")
		fn := get(p, "FunctionName")
		out = append(out, streamEvent{function: value(fn), event: ids[i], props: p, stream: get(p, "EventSourceArn")})
	}
	return out
}

// tableStreams are the streams a stream event may read, as the template
// writes them: the licensing table's (one region); in the regions layout,
// the log and viewing global tables', this stack's or given by parameter.
var tableStreams = []string{
	"!GetAtt " + dynamotest.TableLogicalID + ".StreamArn",
	"!If [InRegions, !If [CreatesGlobalTables, !GetAtt LogTable.StreamArn, !Ref LogTableStreamArn], !GetAtt " + dynamotest.TableLogicalID + ".StreamArn]",
	"!If [CreatesGlobalTables, !GetAtt ViewingTable.StreamArn, !Ref ViewingTableStreamArn]",
}

// shape renders an intrinsic function of the template as one line, so that
// it can be compared ("!If [A, !Ref B, !GetAtt C.D]").
func shape(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	tag := ""
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		tag = n.Tag + " "
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return tag + n.Value
	case yaml.SequenceNode:
		var parts []string
		for _, c := range n.Content {
			parts = append(parts, shape(c))
		}
		return tag + "[" + strings.Join(parts, ", ") + "]"
	}
	return tag + "<mapping>"
}

// filterPatterns reads the Pattern of each filter of a stream event as JSON.
func filterPatterns(props *yaml.Node) ([]map[string]any, error) {
	filters := get(props, "FilterCriteria", "Filters")
	if filters == nil || filters.Kind != yaml.SequenceNode || len(filters.Content) == 0 {
		return nil, fmt.Errorf("no FilterCriteria.Filters")
	}
	var out []map[string]any
	for _, f := range filters.Content {
		var p map[string]any
		if err := json.Unmarshal([]byte(value(get(f, "Pattern"))), &p); err != nil {
			return nil, fmt.Errorf("filter at line %d: Pattern is not a JSON object: %v", f.Line, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// checkStreamEvents: the stream function reads the licensing table's stream,
// sees only INSERTs of event items, answers with partial batch failures,
// and keeps records in order (one poller per shard). Its on-failure
// destination carries no Type, which would make SAM add a policy that
// checkActions does not see.
func checkStreamEvents(d *deployment) []string {
	var problems []string
	evs := d.streamEvents()
	if !slices.ContainsFunc(evs, func(e streamEvent) bool {
		s := shape(e.stream)
		return e.function == streamFunction && (s == tableStreams[0] || s == tableStreams[1])
	}) {
		problems = append(problems, fmt.Sprintf("%s has no DynamoDB event on the log table's stream", streamFunction))
	}
	for _, e := range evs {
		where := e.function + "." + e.event
		if s := shape(e.stream); !slices.Contains(tableStreams, s) {
			problems = append(problems, fmt.Sprintf("%s: reads stream %q, want one of %q", where, s, tableStreams))
		}
		if e.function != streamFunction {
			problems = append(problems, fmt.Sprintf("%s: maps a stream to %q, want %s", where, e.function, streamFunction))
		}
		if !slices.Contains(scalars(get(e.props, "FunctionResponseTypes")), "ReportBatchItemFailures") {
			problems = append(problems, fmt.Sprintf("%s: FunctionResponseTypes must hold ReportBatchItemFailures (the handler reports failures by sequence number)", where))
		}
		if pf := get(e.props, "ParallelizationFactor"); pf != nil && value(pf) != "1" {
			problems = append(problems, fmt.Sprintf("%s: ParallelizationFactor %q; it must be 1 (or unset) to keep each member's records in order", where, value(pf)))
		}
		if age, err := strconv.Atoi(value(get(e.props, "MaximumRecordAgeInSeconds"))); err != nil || (age != -1 && age < 86400) {
			problems = append(problems, fmt.Sprintf("%s: MaximumRecordAgeInSeconds %q; it must be -1 or at least the stream's 24-hour retention: records are never too old to count, and an outage must not drop them", where, value(get(e.props, "MaximumRecordAgeInSeconds"))))
		}
		if get(e.props, "DestinationConfig", "OnFailure", "Type") != nil {
			problems = append(problems, fmt.Sprintf("%s: DestinationConfig.OnFailure.Type makes SAM grant its own policy; grant it in Policies instead", where))
		}
		patterns, err := filterPatterns(e.props)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			continue
		}
		covered := map[string]bool{}
		for i, p := range patterns {
			kinds := literals(p, "dynamodb", "NewImage", "it", "S")
			if len(kinds) == 0 || len(slices.Compact(slices.Sorted(slices.Values(kinds)))) != 1 || allowedChanges[kinds[0]] == nil {
				problems = append(problems, fmt.Sprintf("%s: filter %d must require dynamodb.NewImage.it.S to be one of the kinds %v, exactly", where, i, slices.Sorted(maps.Keys(allowedChanges))))
				continue
			}
			kind := kinds[0]
			covered[kind] = true
			changes := literals(p, "eventName")
			if len(changes) == 0 || slices.ContainsFunc(changes, func(c string) bool { return !slices.Contains(allowedChanges[kind], c) }) {
				problems = append(problems, fmt.Sprintf("%s: filter %d must require eventName to be among %v for %s items", where, i, allowedChanges[kind], kind))
			}
		}
		for kind := range allowedChanges {
			if !covered[kind] {
				problems = append(problems, fmt.Sprintf("%s: no filter passes %s items, which the function needs", where, kind))
			}
		}
	}
	return problems
}

// literals reads the list of exact string values a filter pattern requires
// at path; nil if there is none, or if any value is not a plain string (an
// operator such as prefix or exists).
func literals(pattern map[string]any, path ...string) []string {
	var v any = pattern
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// matches applies a filter pattern made of exact values to a record (as JSON
// values); an operator counts as no match, so the samples are only checked
// against filters this understands.
func matches(pattern map[string]any, doc any) bool {
	m, ok := doc.(map[string]any)
	if !ok {
		return false
	}
	for k, p := range pattern {
		v, present := m[k]
		switch p := p.(type) {
		case map[string]any:
			if !present || !matches(p, v) {
				return false
			}
		case []any:
			if !present || !slices.ContainsFunc(p, func(x any) bool { return x == v }) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// env is a function's environment variable, its own or from Globals.
func (d *deployment) env(fn *yaml.Node, name string) *yaml.Node {
	if v := get(fn, "Properties", "Environment", "Variables", name); v != nil {
		return v
	}
	return get(d.root, "Globals", "Function", "Environment", "Variables", name)
}

// checkSnapshotEvery: the stream function takes its snapshot cadence from
// the template's SnapshotEvery parameter, and so does the API, whose loads
// read that many items in their first Query: a deployment sets it in one
// place.
func checkSnapshotEvery(d *deployment) []string {
	ids, fns := d.resources("AWS::Serverless::Function")
	var problems []string
	for _, fn := range []string{"ApiFunction", streamFunction} {
		i := slices.Index(ids, fn)
		if i < 0 {
			problems = append(problems, fn+": no such function")
			continue
		}
		v := d.env(fns[i], "SNAPSHOT_EVERY")
		switch {
		case v == nil || v.Kind != yaml.ScalarNode:
			problems = append(problems, fn+": SNAPSHOT_EVERY is not set")
		case v.Tag != "!Ref" || v.Value != "SnapshotEvery":
			problems = append(problems, fmt.Sprintf("%s: SNAPSHOT_EVERY is %s %s, want !Ref SnapshotEvery", fn, v.Tag, v.Value))
		case get(d.root, "Parameters", v.Value) == nil:
			problems = append(problems, fmt.Sprintf("%s: SNAPSHOT_EVERY refers to %s, which is not a parameter", fn, v.Value))
		}
	}
	return problems
}

func TestStreamEventIsFilteredAndOrdered(t *testing.T) {
	report(t, "stream", checkStreamEvents(load(t)))
}

func TestSnapshotCadenceIsShared(t *testing.T) {
	report(t, "snapshot cadence", checkSnapshotEvery(load(t)))
}

// TestStreamFilterSemantics: the template's filter passes an event INSERT
// and nothing the function writes or does not need.
func TestStreamFilterSemantics(t *testing.T) {
	var patterns []map[string]any
	for _, e := range load(t).streamEvents() {
		if e.function == streamFunction {
			p, err := filterPatterns(e.props)
			if err != nil {
				t.Fatal(err)
			}
			patterns = append(patterns, p...)
		}
	}
	if len(patterns) == 0 {
		t.Fatalf("%s has no filter", streamFunction)
	}
	record := func(name, kind string) any {
		image := map[string]any{"it": map[string]any{"S": kind}, "pk": map[string]any{"S": "m#m-1"}}
		if kind == "screen" {
			image["ck"] = map[string]any{"BOOL": true} // a start, a stop, an end, a checkpoint
		}
		return map[string]any{"eventName": name, "dynamodb": map[string]any{"NewImage": image}}
	}
	// A heartbeat that is no checkpoint changes only its slot.
	quiet := map[string]any{"eventName": "MODIFY", "dynamodb": map[string]any{"NewImage": map[string]any{
		"it": map[string]any{"S": "screen"}, "pk": map[string]any{"S": "v#m-1"}, "ck": map[string]any{"BOOL": false}}}}
	passes := func(r any) bool {
		return slices.ContainsFunc(patterns, func(p map[string]any) bool { return matches(p, r) })
	}
	for _, r := range []any{record("INSERT", "event"), record("INSERT", "screen"), record("MODIFY", "screen"), record("INSERT", "erasure"), record("MODIFY", "erasure")} {
		if !passes(r) {
			t.Errorf("the filter drops %v", r)
		}
	}
	for _, r := range []any{
		record("INSERT", "snapshot"), record("MODIFY", "snapshot"), record("MODIFY", "event"),
		record("INSERT", "resume"), record("MODIFY", "resume"), record("MODIFY", "counter"), record("REMOVE", "screen"), quiet,
		record("INSERT", "history"), record("MODIFY", "history"), record("MODIFY", "row"), record("MODIFY", "engagement"), record("MODIFY", "erased"),
		map[string]any{"eventName": "REMOVE", "dynamodb": map[string]any{"Keys": map[string]any{}}},
	} {
		if passes(r) {
			t.Errorf("the filter passes %v", r)
		}
	}
}

// TestLocalPollerUsesTheTemplatesFilter: the local poller filters with
// changestream.EventFilters; they must mean the same as the deployed patterns.
func TestLocalPollerUsesTheTemplatesFilter(t *testing.T) {
	var want []map[string]any
	for _, f := range changestream.EventFilters {
		p := map[string]any{}
		if err := json.Unmarshal([]byte(f), &p); err != nil {
			t.Fatalf("changestream.EventFilters %s is not JSON: %v", f, err)
		}
		want = append(want, p)
	}
	evs := load(t).streamEvents()
	if len(evs) == 0 {
		t.Fatal("the template maps no stream")
	}
	for _, e := range evs {
		got, err := filterPatterns(e.props)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: template filters %v differ from changestream.EventFilters %v", e.event, got, want)
		}
	}
}
