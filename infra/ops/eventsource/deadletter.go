package eventsource

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dlicense/dlicense/infra/changestream"
)

// Message is the dead letter as Lambda's on-failure destination carries it.
func (d DeadLetter) Message(streamArn string, at time.Time) changestream.DeadLetterMessage {
	var m changestream.DeadLetterMessage
	m.RequestContext.Condition = "RetryAttemptsExhausted"
	m.ResponseContext.StatusCode = 200
	m.Version, m.Timestamp = "1.0", at.UTC()
	first, last := d.Records[0].Change, d.Records[len(d.Records)-1].Change
	m.Batch = changestream.BatchInfo{
		ShardID: d.ShardID, StartSequenceNumber: first.SequenceNumber, EndSequenceNumber: last.SequenceNumber,
		ApproximateArrivalOfFirstRecord: first.ApproximateCreationDateTime.Time, ApproximateArrivalOfLastRecord: last.ApproximateCreationDateTime.Time,
		BatchSize: len(d.Records), StreamArn: streamArn,
	}
	return m
}

// writeDeadLetter writes a dead letter's message into dir, as a file named
// after its shard and first sequence number, and returns its path.
func writeDeadLetter(dir string, m changestream.DeadLetterMessage) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.json", m.Batch.ShardID, m.Batch.StartSequenceNumber))
	return path, os.WriteFile(path, append(b, '\n'), 0o600)
}
