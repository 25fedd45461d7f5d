package regions_test

import (
	"context"
	"testing"
	"time"

	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dev/regions"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
)

// TestRegionDrill is the region drill in a short form, on a DynamoDB Local
// of its own: a mixed load on three regions, one cut off for a few
// seconds, then every log and every region's read models checked.
func TestRegionDrill(t *testing.T) {
	srv := dynamotest.StartFor(t, dynamotest.Options{})
	keys, err := local.LoadKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a guard against a hang
	defer cancel()
	c, err := regions.Start(ctx, regions.Options{Endpoint: srv.Endpoint(), Prefix: "drill-", Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rep, err := regions.Drill(ctx, c, regions.DrillOptions{Members: 6, Load: 8 * time.Second, CutAfter: 2 * time.Second, CutFor: 3 * time.Second, Cut: 1, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	applied, dropped := c.Replication()
	t.Logf("%+v; replication: %d applied, %d dropped", rep, applied, dropped)
	t.Log(rep.Line())
	if !rep.OK() {
		t.Errorf("the drill found something lost, broken or diverged: %+v", rep)
	}
	if rep.OverLimit == 0 {
		t.Errorf("no member watched over its limit during the cut: the cut did not cut the viewing replicas")
	}
}
