package projector_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/projector"
)

// testStores are the stores a test's stream function reads and writes: the
// embedded store for each, or the DynamoDB stores of a table of its own.
type testStores struct {
	Log      projector.LogStore
	Counters licensing.CounterStore
	Holders  licensing.HolderStore
	Views    viewStore
	History  viewing.HistoryStore
}

// viewStore is the screens and resume points.
type viewStore interface {
	viewing.ScreenStore
	viewing.ProgressStore
}

func memoryStores() testStores {
	m := memstore.New()
	return testStores{Log: m, Counters: m, Holders: m, Views: m, History: m}
}

func dynamoStores(t *testing.T) testStores {
	db, name := dynamotest.Table(t)
	s := dynamo.OneTable(db, name)
	return testStores{Log: s.Log, Counters: s.Counters, Holders: s.Holders, Views: s.Views, History: s.History}
}

// bothStores runs a test on the embedded store and on DynamoDB Local.
func bothStores(t *testing.T, run func(t *testing.T, s testStores)) {
	t.Run("memory", func(t *testing.T) { run(t, memoryStores()) })
	t.Run("dynamo", func(t *testing.T) { run(t, dynamoStores(t)) })
}

// ids makes the ids L1, L2, …
type ids struct{ n atomic.Int64 }

func (i *ids) NewID() string { return fmt.Sprintf("L%d", i.n.Add(1)) }
