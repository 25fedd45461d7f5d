package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/tokens"
)

// calls records the DynamoDB operations a client makes, as IAM names them
// (X-Amz-Target "DynamoDB_20120810.Query" is dynamodb:Query), and each
// write that touches an item of a member's event log.
type calls struct {
	mu      sync.Mutex
	ops     map[string]bool
	logged  []logWrite
	started bool // log writes are recorded once set
}

// logWrite is one write touching an event item (pk m#…, sk e#…): the
// operation, its condition and whether the item carries a TTL.
type logWrite struct {
	op, sk, condition string
	ttl               bool
}

func (c *calls) Do(r *http.Request) (*http.Response, error) {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		_, op, _ := strings.Cut(target, ".")
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(r.Body)
			r.Body.Close()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		c.mu.Lock()
		c.ops["dynamodb:"+op] = true
		if c.started {
			c.logged = append(c.logged, logWrites(op, body)...)
		}
		c.mu.Unlock()
	}
	return http.DefaultClient.Do(r)
}

// logWrites finds, in a request of op, the writes of event items.
func logWrites(op string, body []byte) []logWrite {
	var req struct {
		Item, Key           map[string]map[string]any
		ConditionExpression string
		TransactItems       []map[string]struct {
			Item, Key           map[string]map[string]any
			ConditionExpression string
		}
		RequestItems map[string][]map[string]struct{ Item, Key map[string]map[string]any }
	}
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	var out []logWrite
	add := func(op, cond string, item, key map[string]map[string]any) {
		if item == nil {
			item = key
		}
		pk, _ := item["pk"]["S"].(string)
		sk, _ := item["sk"]["S"].(string)
		if strings.HasPrefix(pk, dynamo.LogPartition("")) && strings.HasPrefix(sk, "e#") {
			_, ttl := item["ttl"]
			out = append(out, logWrite{op: op, sk: sk, condition: cond, ttl: ttl})
		}
	}
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem":
		add(op, req.ConditionExpression, req.Item, req.Key)
	case "TransactWriteItems":
		for _, ti := range req.TransactItems {
			for kind, w := range ti {
				add("TransactWriteItems/"+kind, w.ConditionExpression, w.Item, w.Key)
			}
		}
	case "BatchWriteItem":
		for _, rs := range req.RequestItems {
			for _, r := range rs {
				for kind, w := range r {
					add("BatchWriteItem/"+kind, "", w.Item, w.Key)
				}
			}
		}
	}
	return out
}

// check fails for each operation the function's grants do not cover. A
// transaction is authorised per item: it needs PutItem and UpdateItem, the
// item kinds the stores write in one.
func (c *calls) check(t *testing.T, function string) {
	t.Helper()
	granted := expectedActions[function]
	var seen []string
	for op := range c.ops {
		seen = append(seen, op)
		need := []string{op}
		if op == "dynamodb:TransactWriteItems" {
			need = []string{"dynamodb:PutItem", "dynamodb:UpdateItem"}
		}
		for _, n := range need {
			if !slices.Contains(granted, n) {
				t.Errorf("%s calls %s, which its policy does not grant (%v)", function, op, granted)
			}
		}
	}
	slices.Sort(seen)
	t.Logf("%s called %v", function, seen)
	if len(seen) == 0 {
		t.Errorf("%s made no DynamoDB call: nothing was checked", function)
	}
}

func recordingConfig(t *testing.T) (dynamo.Config, *calls) {
	_, table := dynamotest.Table(t)
	endpoint, _ := dynamotest.EndpointFromEnv()
	c := &calls{ops: map[string]bool{}}
	return dynamo.Config{Table: table, Endpoint: endpoint, HTTPClient: c}, c
}

// TestTheAPICallsOnlyWhatItIsGranted runs every sample API event on
// DynamoDB Local through a client that records each operation, and checks
// the API function's policy in the template grants each one: DynamoDB
// Local checks no permission, so nothing else would catch a missing grant.
func TestTheAPICallsOnlyWhatItIsGranted(t *testing.T) {
	cfg, c := recordingConfig(t)
	key, err := tokens.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	runSamples(t, "dynamo", setup.Config{Dynamo: cfg, SigningKeys: key.Encode(), Issuer: "dlicense", PlanClaim: "plan"})
	// The job samples run on the local engine, which scans the logs as the
	// job function does in AWS (its grant is checked on JobsFunction); the
	// API there only starts and follows executions.
	delete(c.ops, "dynamodb:Scan")
	c.check(t, "ApiFunction")
}

// TestTheLogTakesOnlySingleItemConditionalPuts: every write the API makes
// to members' event logs, over every sample event and a member whose
// account closes with several licences held, after a plan change and a
// withdrawal, is one PutItem on the condition that the version is new,
// without a TTL. That is the only write that holds across regions on a
// table with multi-Region strong consistency, which has no transactions
// and no TTL (docs/regions.md); a change that breaks it fails here.
func TestTheLogTakesOnlySingleItemConditionalPuts(t *testing.T) {
	cfg, c := recordingConfig(t)
	key, err := tokens.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	c.started = true
	conf := setup.Config{Dynamo: cfg, SigningKeys: key.Encode(), Issuer: "dlicense", PlanClaim: "plan"}
	ctx := context.Background()
	app, err := setup.Build(ctx, conf)
	if err != nil {
		t.Fatal(err)
	}
	member := "single-writes"
	do := func(cmd licensing.Command) licensing.Result {
		t.Helper()
		res, err := app.Licensing.Execute(ctx, cmd, "")
		if err != nil {
			t.Fatalf("%T = %v", cmd, err)
		}
		return res
	}
	for i, title := range []string{"tt-first-light", "tt-low-tide", "tt-salt-and-rope", "tt-lighthouse"} {
		do(licensing.Acquire{Member: member, Plan: "premium", Device: fmt.Sprintf("d%d", i%2), Title: title})
	}
	if res := do(licensing.EnforcePlan{Member: member, Plan: "basic"}); len(res.Licences) < 2 {
		t.Fatalf("EnforcePlan released %d licences, want several in one decision", len(res.Licences))
	}
	do(licensing.Acquire{Member: member, Plan: "premium", Device: "d0", Title: "tt-first-light"})
	do(licensing.Acquire{Member: member, Plan: "premium", Device: "d1", Title: "tt-ice-road"})
	if res := do(licensing.CloseAccount{Member: member}); len(res.Licences) < 2 {
		t.Fatalf("CloseAccount released %d licences, want several in one decision", len(res.Licences))
	}
	runSamples(t, "dynamo", conf) // withdrawals among them

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.logged) < 10 {
		t.Fatalf("%d writes of event items recorded: the check saw too little", len(c.logged))
	}
	seen := map[string]bool{}
	for _, w := range c.logged {
		if w.op != "PutItem" || w.condition != "attribute_not_exists(pk)" || w.ttl {
			t.Errorf("event item %s written by %s (condition %q, TTL %v): want one PutItem on attribute_not_exists(pk), no TTL", w.sk, w.op, w.condition, w.ttl)
		}
		seen[w.op] = true
	}
	t.Logf("%d event writes, by %v", len(c.logged), seen)
}

// TestLogWritesSeesEveryWayToWrite: the check above finds event items in
// transactions, batches and updates, and a TTL on a put.
func TestLogWritesSeesEveryWayToWrite(t *testing.T) {
	ev := `{"pk":{"S":"m#a"},"sk":{"S":"e#00000000000000000002"}}`
	for _, c := range []struct {
		op, body, want string
	}{
		{"TransactWriteItems", `{"TransactItems":[{"Put":{"Item":` + ev + `,"ConditionExpression":"attribute_not_exists(pk)"}}]}`, "TransactWriteItems/Put"},
		{"BatchWriteItem", `{"RequestItems":{"t":[{"PutRequest":{"Item":` + ev + `}}]}}`, "BatchWriteItem/PutRequest"},
		{"UpdateItem", `{"Key":` + ev + `}`, "UpdateItem"},
		{"PutItem", `{"Item":{"pk":{"S":"m#a"},"sk":{"S":"e#1"},"ttl":{"N":"1"}},"ConditionExpression":"attribute_not_exists(pk)"}`, "PutItem"},
		{"PutItem", `{"Item":{"pk":{"S":"v#a"},"sk":{"S":"e#1"}}}`, ""},
	} {
		got := logWrites(c.op, []byte(c.body))
		if c.want == "" {
			if len(got) != 0 {
				t.Errorf("%s %s = %+v, want no event write", c.op, c.body, got)
			}
			continue
		}
		if len(got) != 1 || got[0].op != c.want || (c.op == "PutItem" && !got[0].ttl) {
			t.Errorf("%s %s = %+v, want one write by %s", c.op, c.body, got, c.want)
		}
	}
}

// TestTheStreamFunctionCallsOnlyWhatItIsGranted does the same for the stream
// function: a member's licensing log (snapshots, counters, an offline
// upload), screens that start, beat, stop and end, and an erasure.
func TestTheStreamFunctionCallsOnlyWhatItIsGranted(t *testing.T) {
	ctx := context.Background()
	cfg, c := recordingConfig(t)
	db, err := dynamo.NewClient(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := dynamo.OneTable(db, cfg.Table)
	policy := licensing.DefaultPolicy()
	var recs []events.DynamoDBEventRecord
	seq := 0
	next := func() string { seq++; return fmt.Sprintf("%021d", seq) }

	// Licensing: grants, an offline upload, a release, written to the
	// table, and their INSERT records.
	member := "calls-member"
	at := time.Now().UTC().Truncate(time.Millisecond)
	lic := func(v int64) string { return fmt.Sprintf("L%d", v) }
	var log []licensing.Event
	for v := int64(1); v <= 5; v++ {
		log = append(log, licensing.Event{Version: v, At: at, PolicyVersion: policy.Version, Payload: &licensing.LicenceAcquired{
			Licence: lic(v), Plan: "premium", Title: "tt-first-light", Studio: "open-reel", Device: "d1", ExpiresAt: at.Add(time.Hour)}})
	}
	log = append(log, licensing.Event{Version: 6, At: at, PolicyVersion: policy.Version, Payload: &licensing.PlaybackRecorded{Device: "d1",
		Accepted: []licensing.PlaybackEntry{{ID: "p1", Licence: lic(1), Title: "tt-first-light", Kind: licensing.PlaybackStart, DeviceTime: at.Add(-time.Minute)},
			{ID: "p2", Licence: lic(1), Title: "tt-first-light", Kind: licensing.PlaybackStop, PositionMs: 60_000, DeviceTime: at}}}})
	log = append(log, licensing.Event{Version: 7, At: at, PolicyVersion: policy.Version, Payload: &licensing.LicenceReleased{Licence: lic(2), Reason: licensing.ReasonDeleted}})
	if err := store.Log.Append(ctx, member, 0, log); err != nil {
		t.Fatal(err)
	}
	for _, e := range log {
		se, err := licensing.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		r, err := projectortest.InsertRecord(member, se, next())
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}

	// Viewing: the service on the embedded store makes the screen writes;
	// their records go to the stream function on the table.
	mem := memstore.New()
	mem.SubscribeScreens(func(sc memstore.ScreenChange) {
		r, err := projectortest.ScreenRecord(sc.Member, &sc.View, sc.Insert, next())
		if err != nil {
			t.Error(err)
		}
		recs = append(recs, r)
	})
	svc := viewing.NewService(mem, policy, setup.SystemClock{}, setup.RandomIDs{})
	st, err := svc.Start(ctx, viewing.Start{Member: member, Plan: "premium", Device: "tv", Title: "tt-first-light"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Beat(ctx, viewing.Beat{Member: member, Plan: "premium", Device: "tv", View: st.View.ID, PositionMs: 30_000, State: viewing.Playing, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Stop(ctx, viewing.Stop{Member: member, Device: "tv", View: st.View.ID, PositionMs: 31_000}); err != nil {
		t.Fatal(err)
	}
	other, err := svc.Start(ctx, viewing.Start{Member: member, Plan: "premium", Device: "phone", Title: "tt-low-tide"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.End(ctx, viewing.End{Member: member, View: other.View.ID, Reason: viewing.EndedByMember}); err != nil {
		t.Fatal(err)
	}
	// An erasure, begun on the table as the API would.
	erasedAt := time.Now().UTC().Truncate(time.Millisecond)
	if err := store.History.BeginErasure(ctx, member, erasedAt); err != nil {
		t.Fatal(err)
	}
	r, err := projectortest.ErasureRecord(member, erasedAt, next())
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, r)

	c.ops = map[string]bool{} // what the stream function does, not the setup
	p := setup.NewProcessor(setup.DynamoStores(store), 4, policy)
	resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: recs})
	if err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	c.check(t, "StreamsFunction")
}
