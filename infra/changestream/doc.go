// Package changestream is the table's change stream as Lambda's DynamoDB
// event source mapping hands it to the stream function: the template's
// filter criteria (EventFilters), the records as Lambda delivers them
// (EventRecord), a batch handed through the Lambda JSON path with its item
// failures read back (Invoke), and the redrive of a dead-lettered batch,
// whose records stay in the stream for 24 hours (Redriver).
//
// The stream function links it to redrive its dead letters itself
// (Handler); the local poller (infra/ops/eventsource) and the operator's
// redrive command use the same code.
package changestream
