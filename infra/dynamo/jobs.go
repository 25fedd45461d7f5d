package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// JobResults is the results of fleet-wide jobs: one item per slice of a
// job, in the job's partition ("j#<job>", "s#<segment>"), written once, and
// the job's summary ("summary").
type JobResults struct {
	t *Table
}

// NewJobResults returns the job results kept in t.
func NewJobResults(t *Table) *JobResults { return &JobResults{t: t} }

const (
	jobPrefix  = "j#"
	sliceSK    = "s#"
	kindSlice  = "job-slice"
	summarySK  = "summary"
	kindJobSum = "job-summary"
)

// SaveSlice writes a slice's result once: one PutItem on
// attribute_not_exists(sk); a slice run again keeps the first (equal) one.
func (s *JobResults) SaveSlice(ctx context.Context, job string, segment int, data []byte) error {
	item := key(jobPrefix+job, fmt.Sprintf("%s%06d", sliceSK, segment))
	item["it"], item["d"] = str(kindSlice), &types.AttributeValueMemberB{Value: data}
	err := s.t.put(ctx, item, "attribute_not_exists(sk)", nil, nil, false)
	if _, failed := failedCondition(err); failed {
		return nil
	}
	if err != nil {
		return fmt.Errorf("save slice %d of job %s: %w", segment, job, unavailable(err))
	}
	return nil
}

// Slices returns the results of a job's slices written so far, with one
// strongly consistent Query (paged).
func (s *JobResults) Slices(ctx context.Context, job string) ([][]byte, error) {
	var out [][]byte
	err := s.t.queryPrefix(ctx, jobPrefix+job, []string{sliceSK}, func(item map[string]types.AttributeValue) {
		if b, ok := item["d"].(*types.AttributeValueMemberB); ok {
			out = append(out, b.Value)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read the slices of job %s: %w", job, err)
	}
	return out, nil
}

// SaveSummary writes the job's summary (again, if the reduce runs again).
func (s *JobResults) SaveSummary(ctx context.Context, job string, data []byte) error {
	item := key(jobPrefix+job, summarySK)
	item["it"], item["d"] = str(kindJobSum), &types.AttributeValueMemberB{Value: data}
	if err := s.t.put(ctx, item, "", nil, nil, false); err != nil {
		return fmt.Errorf("save the summary of job %s: %w", job, unavailable(err))
	}
	return nil
}
