// Package storetest is the contract every store passes, a suite per port:
// the embedded store (infra/memstore) and the DynamoDB stores (infra/dynamo)
// run the same suites, so the services and the stream function can rely on
// one set of semantics.
//
//	RunLog          member event logs and snapshots
//	RunViews        screens and resume points
//	RunHistory      history entries, rows, engagement, erasure
//	RunCounters     licence counters, exact under redelivery
//	RunHolders      the title holders index
//	RunWithdrawals  title withdrawals
//	RunRefusals     members' refusals
package storetest
