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
// another's items sit in its table.

func TestLogContract(t *testing.T) {
	db, table := localTable(t)
	log := dynamo.NewLog(dynamo.NewTable(db, table))
	storetest.RunLog(t, func(t *testing.T) storetest.LogStore { return log })
}

func TestViewsContract(t *testing.T) {
	db, table := localTable(t)
	views := dynamo.NewViews(dynamo.NewTable(db, table))
	storetest.RunViews(t, func(t *testing.T) storetest.ViewStore { return views })
}

func TestHistoryContract(t *testing.T) {
	db, viewsTable := localTable(t)
	_, historyTable := localTable(t)
	views := dynamo.NewViews(dynamo.NewTable(db, viewsTable))
	history := dynamo.NewHistory(dynamo.NewTable(db, historyTable), views)
	storetest.RunHistory(t, func(t *testing.T) storetest.HistoryStores {
		return storetest.HistoryStores{History: history, Views: views}
	})
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
