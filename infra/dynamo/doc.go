// Package dynamo keeps the service's data in DynamoDB: one store per port,
// each over a Table (the shared client, with metering, the failures that
// may pass classified as Unavailable, and the batch and transaction helpers
// with back-off):
//
//	Log          members' event logs and snapshots (licensing.EventStore,
//	             SnapshotStore): appends are conditional writes, a load is
//	             one Query
//	Views        screens and resume points (viewing.ScreenStore,
//	             ProgressStore)
//	History      history entries, recently watched rows, engagement and
//	             erasures (viewing.HistoryStore)
//	Counters     licence counters (licensing.CounterStore)
//	Holders      the title holders index (licensing.HolderStore)
//	Withdrawals  title withdrawals (licensing.WithdrawalStore)
//	Refusals     members' latest refusals (licensing.RefusalStore)
//
// No store assumes another's items sit in its table: where one needs
// another's data (a recount reads the log, an erasure ends screens) it goes
// through that store. OneTable puts all of them in one table, as the
// template does today. Change decodes the table's stream records: the key
// layout (keys.go) is known here only.
package dynamo
