package dynamo_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/audit"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/storetest"
)

// Every store passes its port's contract on DynamoDB Local. Where a store
// reads or ends another's items (counters count from the log, an erasure
// ends screens), the two live in tables of their own: no store may assume
// another's items sit in its table, as in several regions
// (dynamo.Layout).

func TestLogContract(t *testing.T) {
	db, table := localTable(t)
	log := dynamo.NewLog(dynamo.NewTable(db, table))
	storetest.RunLog(t, func(t *testing.T) storetest.LogStore { return log })
}

// TestViewsContract: the screens and the resume points in one table, and
// apart (the screens shared by the regions, the resume points each
// region's own).
func TestViewsContract(t *testing.T) {
	db, table := localTable(t)
	_, progress := localTable(t)
	one := dynamo.NewTable(db, table)
	for name, views := range map[string]*dynamo.Views{
		"one table": dynamo.NewViews(one, one),
		"apart":     dynamo.NewViews(one, dynamo.NewTable(db, progress)),
	} {
		t.Run(name, func(t *testing.T) {
			storetest.RunViews(t, func(t *testing.T) storetest.ViewStore { return views })
		})
	}
}

// TestHistoryContract: every viewing read model in one table with the
// screens and the erasure requests, as in one region; and as in several,
// the screens and the requests in one table, the read models (history,
// rows, engagement, resume points) in another.
func TestHistoryContract(t *testing.T) {
	db, oneName := localTable(t)
	_, viewingName := localTable(t)
	_, regionalName := localTable(t)
	one := dynamo.NewTable(db, oneName)
	oneViews := dynamo.NewViews(one, one)
	shared, regional := dynamo.NewTable(db, viewingName), dynamo.NewTable(db, regionalName)
	apartViews := dynamo.NewViews(shared, regional)
	for name, stores := range map[string]storetest.HistoryStores{
		"one table": {History: dynamo.NewHistory(one, one, oneViews), Views: oneViews},
		"regions":   {History: dynamo.NewHistory(regional, shared, apartViews), Views: apartViews},
	} {
		t.Run(name, func(t *testing.T) {
			storetest.RunHistory(t, func(t *testing.T) storetest.HistoryStores { return stores })
		})
	}
}

func TestCountersContract(t *testing.T) {
	db, logTable := localTable(t)
	_, countersTable := localTable(t)
	log := dynamo.NewLog(dynamo.NewTable(db, logTable))
	counters := dynamo.NewCounters(dynamo.NewTable(db, countersTable), log)
	storetest.RunCounters(t, func(t *testing.T) storetest.CounterStores {
		return storetest.CounterStores{Counters: counters, Log: log}
	})
}

func TestHoldersContract(t *testing.T) {
	db, table := localTable(t)
	holders := dynamo.NewHolders(dynamo.NewTable(db, table))
	storetest.RunHolders(t, func(t *testing.T) licensing.HolderStore { return holders })
}

func TestWithdrawalsContract(t *testing.T) {
	db, table := localTable(t)
	withdrawals := dynamo.NewWithdrawals(dynamo.NewTable(db, table))
	storetest.RunWithdrawals(t, func(t *testing.T) licensing.WithdrawalStore { return withdrawals })
}

func TestRefusalsContract(t *testing.T) {
	db, table := localTable(t)
	refusals := dynamo.NewRefusals(dynamo.NewTable(db, table))
	storetest.RunRefusals(t, func(t *testing.T) licensing.RefusalStore { return refusals })
}

// TestAuditContract: the trail on DynamoDB Local, each record expiring by
// the table's TTL after the retention.
func TestAuditContract(t *testing.T) {
	db, table := localTable(t)
	s := dynamo.OneTable(db, table).Audit
	storetest.RunAudit(t, func(*testing.T) audit.Store { return s })
	out, err := db.Scan(t.Context(), &dynamodb.ScanInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range out.Items {
		if it, _ := item["it"].(*types.AttributeValueMemberS); it == nil || it.Value != "audit" {
			continue
		}
		ttl, _ := item["ttl"].(*types.AttributeValueMemberN)
		d, _ := item["d"].(*types.AttributeValueMemberS)
		var r audit.Record
		if ttl == nil || d == nil || json.Unmarshal([]byte(d.Value), &r) != nil || ttl.Value != strconv.FormatInt(r.At.Add(time.Hour).Unix(), 10) {
			t.Errorf("audit item %v: want a ttl of its time plus the retention", item)
		}
	}
}
