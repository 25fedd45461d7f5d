package projector_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// fakeStream is a DynamoDB stream in memory, with DynamoDB Local's habits:
// an open shard always gives a next iterator, sequence numbers are 21
// digits. Iterators are "shard/index".
type fakeStream struct {
	mu     sync.Mutex
	shards []*fakeShard
	seq    int
	// reads counts GetRecords calls per shard.
	reads map[string]int
}

type fakeShard struct {
	id, parent string
	records    []types.Record
	closed     bool
}

// shard adds a shard.
func (f *fakeStream) shard(id, parent string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shards = append(f.shards, &fakeShard{id: id, parent: parent})
}

// put appends a record for item (member, version, kind) to a shard.
func (f *fakeStream) put(shard, eventName, member string, version int, kind string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	seq := fmt.Sprintf("%021d", f.seq)
	keys := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "m#" + member},
		"sk": &types.AttributeValueMemberS{Value: fmt.Sprintf("e#%020d", version)},
	}
	image := map[string]types.AttributeValue{
		"pk": keys["pk"], "sk": keys["sk"],
		"it": &types.AttributeValueMemberS{Value: kind},
		"v":  &types.AttributeValueMemberN{Value: strconv.Itoa(version)},
	}
	for _, s := range f.shards {
		if s.id == shard {
			s.records = append(s.records, types.Record{
				AwsRegion: aws.String("ddblocal"), EventID: aws.String("id-" + seq), EventName: types.OperationType(eventName),
				EventSource: aws.String("aws:dynamodb"), EventVersion: aws.String("1.1"),
				Dynamodb: &types.StreamRecord{Keys: keys, NewImage: image, SequenceNumber: aws.String(seq), SizeBytes: aws.Int64(42), StreamViewType: types.StreamViewTypeNewImage},
			})
			return seq
		}
	}
	panic("no shard " + shard)
}

func (f *fakeStream) close(shard string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.shards {
		if s.id == shard {
			s.closed = true
		}
	}
}

func (f *fakeStream) find(id string) *fakeShard {
	for _, s := range f.shards {
		if s.id == id {
			return s
		}
	}
	return nil
}

func (f *fakeStream) DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// One shard per page, to exercise paging.
	i := 0
	if in.ExclusiveStartShardId != nil {
		i = slices.IndexFunc(f.shards, func(s *fakeShard) bool { return s.id == *in.ExclusiveStartShardId }) + 1
	}
	desc := &types.StreamDescription{StreamArn: in.StreamArn}
	if i < len(f.shards) {
		s := f.shards[i]
		sh := types.Shard{ShardId: aws.String(s.id), SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
		if s.parent != "" {
			sh.ParentShardId = aws.String(s.parent)
		}
		desc.Shards = []types.Shard{sh}
		if i+1 < len(f.shards) {
			desc.LastEvaluatedShardId = aws.String(s.id)
		}
	}
	return &dynamodbstreams.DescribeStreamOutput{StreamDescription: desc}, nil
}

func (f *fakeStream) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.find(aws.ToString(in.ShardId))
	if s == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no shard")}
	}
	at := func(seq string) int {
		return slices.IndexFunc(s.records, func(r types.Record) bool { return *r.Dynamodb.SequenceNumber == seq })
	}
	i := 0
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
	case types.ShardIteratorTypeAtSequenceNumber:
		i = at(aws.ToString(in.SequenceNumber))
	case types.ShardIteratorTypeAfterSequenceNumber:
		if i = at(aws.ToString(in.SequenceNumber)); i >= 0 {
			i++
		}
	default:
		return nil, fmt.Errorf("iterator type %s not faked", in.ShardIteratorType)
	}
	if i < 0 {
		return nil, fmt.Errorf("InternalFailure: no record %s", aws.ToString(in.SequenceNumber)) // as DynamoDB Local answers
	}
	return &dynamodbstreams.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("%s/%d", s.id, i))}, nil
}

func (f *fakeStream) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, index, _ := strings.Cut(aws.ToString(in.ShardIterator), "/")
	i, err := strconv.Atoi(index)
	s := f.find(id)
	if err != nil || s == nil {
		return nil, &types.ExpiredIteratorException{Message: aws.String("bad iterator")}
	}
	if f.reads == nil {
		f.reads = map[string]int{}
	}
	f.reads[id]++
	end := min(i+int(aws.ToInt32(in.Limit)), len(s.records))
	out := &dynamodbstreams.GetRecordsOutput{Records: slices.Clone(s.records[i:end])}
	if !s.closed || i < len(s.records) {
		out.NextShardIterator = aws.String(fmt.Sprintf("%s/%d", id, end))
	}
	return out, nil
}
