package changestream_test

import (
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/changestream"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
)

// eventRecord is the INSERT record of an event item, as the stream carries it.
func eventRecord(t *testing.T) events.DynamoDBEventRecord {
	t.Helper()
	se, err := licensing.EncodeEvent(licensing.Event{Version: 1, PolicyVersion: "p",
		Payload: &licensing.LicenceReleased{Licence: "L1", Reason: licensing.ReasonDeleted}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := projectortest.InsertRecord("m-1", se, "000000000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEventFilter(t *testing.T) {
	f, err := changestream.ParseFilters(changestream.EventFilters...)
	if err != nil {
		t.Fatalf("ParseFilters(EventFilters) = %v", err)
	}
	with := func(change func(r *events.DynamoDBEventRecord)) events.DynamoDBEventRecord {
		r := eventRecord(t)
		image := map[string]events.DynamoDBAttributeValue{}
		for k, v := range r.Change.NewImage {
			image[k] = v
		}
		r.Change.NewImage = image
		change(&r)
		return r
	}
	for _, c := range []struct {
		name   string
		record events.DynamoDBEventRecord
		want   bool
	}{
		{"event insert", with(func(*events.DynamoDBEventRecord) {}), true},
		{"event modify", with(func(r *events.DynamoDBEventRecord) { r.EventName = "MODIFY" }), false},
		{"event remove", with(func(r *events.DynamoDBEventRecord) { r.EventName, r.Change.NewImage = "REMOVE", nil }), false},
		{"snapshot insert", with(func(r *events.DynamoDBEventRecord) { r.Change.NewImage["it"] = events.NewStringAttribute("snapshot") }), false},
		{"no kind", with(func(r *events.DynamoDBEventRecord) { delete(r.Change.NewImage, "it") }), false},
		{"kind of another type", with(func(r *events.DynamoDBEventRecord) {
			r.Change.NewImage["it"] = events.NewStringSetAttribute([]string{"event"})
		}), false},
		{"no new image", with(func(r *events.DynamoDBEventRecord) { r.Change.NewImage = nil }), false},
		{"no event name", with(func(r *events.DynamoDBEventRecord) { r.EventName = "" }), false},
		{"screen insert (a start)", with(func(r *events.DynamoDBEventRecord) {
			r.Change.NewImage["it"], r.Change.NewImage["ck"] = events.NewStringAttribute("screen"), events.NewBooleanAttribute(true)
		}), true},
		{"screen modify (a stop, an end, a checkpoint)", with(func(r *events.DynamoDBEventRecord) {
			r.EventName, r.Change.NewImage["it"], r.Change.NewImage["ck"] = "MODIFY", events.NewStringAttribute("screen"), events.NewBooleanAttribute(true)
		}), true},
		{"a heartbeat that is no checkpoint", with(func(r *events.DynamoDBEventRecord) {
			r.EventName, r.Change.NewImage["it"], r.Change.NewImage["ck"] = "MODIFY", events.NewStringAttribute("screen"), events.NewBooleanAttribute(false)
		}), false},
		{"a screen written before checkpoints (no ck)", with(func(r *events.DynamoDBEventRecord) {
			r.EventName, r.Change.NewImage["it"] = "MODIFY", events.NewStringAttribute("screen")
		}), false},
		{"screen remove", with(func(r *events.DynamoDBEventRecord) {
			r.EventName, r.Change.NewImage["it"] = "REMOVE", events.NewStringAttribute("screen")
		}), false},
		{"resume point modify", with(func(r *events.DynamoDBEventRecord) {
			r.EventName, r.Change.NewImage["it"] = "MODIFY", events.NewStringAttribute("resume")
		}), false},
		{"counter modify", with(func(r *events.DynamoDBEventRecord) {
			r.EventName, r.Change.NewImage["it"] = "MODIFY", events.NewStringAttribute("counter")
		}), false},
	} {
		if got := f.Match(c.record); got != c.want {
			t.Errorf("Match(%s) = %v, want %v", c.name, got, c.want)
		}
	}
	if !(changestream.Filter{}).Match(with(func(r *events.DynamoDBEventRecord) { r.EventName = "REMOVE" })) {
		t.Errorf("zero Filter.Match(REMOVE) = false, want every record to pass")
	}
}

func TestFilterLiterals(t *testing.T) {
	r := eventRecord(t) // SizeBytes 0, eventVersion "1.1", NewImage.v {"N": "1"}
	for _, c := range []struct {
		pattern string
		want    bool
	}{
		{`{"eventVersion": ["1.0", "1.1"]}`, true},
		{`{"dynamodb": {"SizeBytes": [0.0]}}`, true}, // numbers by value
		{`{"dynamodb": {"SizeBytes": ["0"]}}`, false},
		{`{"dynamodb": {"NewImage": {"v": {"N": ["1"]}}}}`, true}, // DynamoDB numbers are strings
		{`{"dynamodb": {"NewImage": {"v": {"N": [1]}}}}`, false},
		{`{"dynamodb": {"NewImage": {"v": ["1"]}}}`, false}, // an object is not a literal
		{`{"userIdentity": [null]}`, false},                 // absent is not null
		{`{"eventName": ["INSERT"], "eventSource": ["aws:dynamodb"]}`, true},
		{`{"eventName": ["INSERT"], "eventSource": ["aws:kinesis"]}`, false},
		{``, true},
	} {
		f, err := changestream.ParseFilter(c.pattern)
		if err != nil {
			t.Errorf("ParseFilter(%s) = %v", c.pattern, err)
			continue
		}
		if got := f.Match(r); got != c.want {
			t.Errorf("ParseFilter(%s).Match = %v, want %v", c.pattern, got, c.want)
		}
	}
}

func TestParseFilterRefuses(t *testing.T) {
	for _, p := range []string{
		`["INSERT"]`,
		`{"eventName": "INSERT"}`,
		`{"eventName": []}`,
		`{"dynamodb": {}}`,
		`{"eventName": [{"prefix": "INS"}]}`,
		`{"dynamodb": {"NewImage": {"v": {"N": [{"numeric": [">", 0]}]}}}}`,
		`{"eventName": ["INSERT"]} {}`,
		`{"eventName": ["INSERT"]`,
	} {
		if _, err := changestream.ParseFilter(p); err == nil {
			t.Errorf("ParseFilter(%s) = nil error", p)
		}
	}
}
