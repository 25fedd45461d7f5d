// Package eventsource drives the stream function from outside Lambda, the
// way Lambda's DynamoDB event source mapping does: it reads a table's
// stream (DynamoDB or DynamoDB Local), applies the template's filter
// criteria (EventFilters), hands batches to the handler through the Lambda
// JSON path and retries from the first failed record (ReportBatchItemFailures).
//
// The Poller is the local run's stream on DynamoDB Local, where no Lambda
// polls; the Redriver replays a dead-lettered batch against the deployed
// table; the record builders give tests and the embedded store's feed the
// records DynamoDB Streams delivers. None of it is linked into a Lambda.
package eventsource
