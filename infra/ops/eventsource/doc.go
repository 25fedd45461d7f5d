// Package eventsource drives the stream function from outside Lambda, the
// way Lambda's DynamoDB event source mapping does: the Poller reads a
// table's stream (DynamoDB Local, where no Lambda polls, for local runs and
// tests), applies the template's filter criteria, hands batches to the
// handler through the Lambda JSON path, retries from the first failed
// record (ReportBatchItemFailures) and writes the dead letters Lambda's
// on-failure destination would get. What it shares with the Lambda (the
// filter, the records, the redrive) is in infra/changestream. None of this
// package is linked into a Lambda.
package eventsource
