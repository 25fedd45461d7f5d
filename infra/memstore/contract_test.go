package memstore_test

import (
	"testing"

	"github.com/dlicense/dlicense/domain/audit"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/storetest"
)

// The embedded store passes every port's contract, as the DynamoDB stores
// do: a new store for each test, and one shared by every test of the log.

func TestLogContract(t *testing.T) {
	storetest.RunLog(t, func(*testing.T) storetest.LogStore { return memstore.New() })
}

func TestLogContractSharedStore(t *testing.T) {
	shared := memstore.New()
	storetest.RunLog(t, func(*testing.T) storetest.LogStore { return shared })
}

func TestViewsContract(t *testing.T) {
	storetest.RunViews(t, func(*testing.T) storetest.ViewStore { return memstore.New() })
}

func TestHistoryContract(t *testing.T) {
	storetest.RunHistory(t, func(*testing.T) storetest.HistoryStores {
		m := memstore.New()
		return storetest.HistoryStores{History: m, Views: m}
	})
}

func TestCountersContract(t *testing.T) {
	storetest.RunCounters(t, func(*testing.T) storetest.CounterStores {
		m := memstore.New()
		return storetest.CounterStores{Counters: m, Log: m}
	})
}

func TestHoldersContract(t *testing.T) {
	storetest.RunHolders(t, func(*testing.T) licensing.HolderStore { return memstore.New() })
}

func TestWithdrawalsContract(t *testing.T) {
	storetest.RunWithdrawals(t, func(*testing.T) licensing.WithdrawalStore { return memstore.New() })
}

func TestRefusalsContract(t *testing.T) {
	storetest.RunRefusals(t, func(*testing.T) licensing.RefusalStore { return memstore.New() })
}

func TestAuditContract(t *testing.T) {
	storetest.RunAudit(t, func(*testing.T) audit.Store { return memstore.New() })
}
