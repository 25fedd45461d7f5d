package dynamo_test

import (
	"testing"

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
