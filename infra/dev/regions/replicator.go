package regions

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// replicator emulates the replication of a global table with multi-Region
// eventual consistency: it tails each region's replica's stream and applies
// every change to the other replicas, last writer wins on the write time
// the proxies stamp (a change older than the item it would replace is
// dropped, and so is the echo of a change already applied). Switches: a
// link to or from a region cut off holds its changes until the region is
// healed; Delay holds every change that long; Reorder applies a batch in
// random order.
type replicator struct {
	db      *dynamodb.Client
	streams *dynamodbstreams.Client
	tables  []string // the replicas, by region

	mu       sync.Mutex
	cut      []bool
	held     [][]change // per target region: changes waiting for a link
	applying [][]change // per target region: changes being applied
	// echoes are, per replica, the changes the replicator applied to it:
	// its stream carries them back, and they are not sent on again (as
	// DynamoDB does not replicate a replicated write).
	echoes   []map[string]bool
	pending  int // changes read and not yet applied or held
	Delay    time.Duration
	Reorder  bool
	applied  int
	dropped  int
	lastSeen []time.Time
}

// change is one stream record of a replica.
type change struct {
	from   int
	remove bool
	item   map[string]dtypes.AttributeValue // the new image, or the keys of a removal
	at     time.Time
}

// applyWorkers is how many changes a replica gets applied at once.
const applyWorkers = 8

func newReplicator(db *dynamodb.Client, streams *dynamodbstreams.Client, tables []string) *replicator {
	n := len(tables)
	return &replicator{db: db, streams: streams, tables: tables, cut: make([]bool, n), held: make([][]change, n), applying: make([][]change, n), lastSeen: make([]time.Time, n), echoes: make([]map[string]bool, n)}
}

// setCut cuts a region off (its changes are held, and so are the others'
// to it) or heals it (what was held is applied).
func (r *replicator) setCut(region int, cut bool) {
	r.mu.Lock()
	r.cut[region] = cut
	r.mu.Unlock()
}

// run tails every replica's stream until ctx ends.
func (r *replicator) run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(r.tables))
	for i := range r.tables {
		wg.Go(func() { errs[i] = r.tail(ctx, i) })
	}
	for to := range r.tables {
		wg.Go(func() {
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					r.flush(ctx, to)
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// tail reads one replica's stream from its oldest record on.
func (r *replicator) tail(ctx context.Context, from int) error {
	d, err := r.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(r.tables[from])})
	if err != nil {
		return err
	}
	arn := aws.ToString(d.Table.LatestStreamArn)
	iters := map[string]*string{}
	for ctx.Err() == nil {
		desc, err := r.streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("replica %s: %w", r.tables[from], err)
		}
		for _, sh := range desc.StreamDescription.Shards {
			id := aws.ToString(sh.ShardId)
			if _, ok := iters[id]; ok {
				continue
			}
			it, err := r.streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(arn), ShardId: sh.ShardId, ShardIteratorType: stypes.ShardIteratorTypeTrimHorizon})
			if err != nil {
				return err
			}
			iters[id] = it.ShardIterator
		}
		read := 0
		for id, it := range iters {
			if it == nil {
				continue
			}
			out, err := r.streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it})
			var trimmed *stypes.TrimmedDataAccessException
			if errors.As(err, &trimmed) {
				// DynamoDB Local refuses an iterator taken on an empty shard
				// once records came: take one from the oldest again.
				delete(iters, id)
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("replica %s: %w", r.tables[from], err)
			}
			iters[id] = out.NextShardIterator
			r.add(from, out.Records)
			read += len(out.Records)
		}
		if read == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func (r *replicator) add(from int, recs []stypes.Record) {
	if len(recs) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastSeen[from] = time.Now()
	for _, rec := range recs {
		c := change{from: from, at: time.Now()}
		if rec.EventName == stypes.OperationTypeRemove {
			c.remove, c.item = true, fromStream(rec.Dynamodb.Keys)
		} else {
			c.item = fromStream(rec.Dynamodb.NewImage)
		}
		if k := c.key(); r.echoes[from][k] {
			delete(r.echoes[from], k)
			continue
		}
		// Every change is sent, none folded into a later one of its item:
		// each region's stream must see every write it applies (a view that
		// held a slot for a while is in every region's history).
		for to := range r.tables {
			if to != from {
				r.held[to] = append(r.held[to], c)
				r.pending++
			}
		}
	}
}

// flush applies the changes held for a replica whose links are up and
// whose delay has passed.
func (r *replicator) flush(ctx context.Context, to int) {
	{
		r.mu.Lock()
		var ready, keep []change
		for _, c := range r.held[to] {
			if r.cut[to] || r.cut[c.from] || time.Since(c.at) < r.Delay {
				keep = append(keep, c)
			} else {
				ready = append(ready, c)
			}
		}
		r.held[to], r.applying[to] = keep, ready
		reorder := r.Reorder
		r.mu.Unlock()
		if reorder {
			rand.Shuffle(len(ready), func(i, j int) { ready[i], ready[j] = ready[j], ready[i] })
		}
		// Several at once: last writer wins on the write time, so the
		// order of application does not matter.
		work := make(chan change)
		var wg sync.WaitGroup
		for range applyWorkers {
			wg.Go(func() {
				for c := range work {
					if err := r.apply(ctx, to, c); err != nil {
						r.mu.Lock()
						r.held[to] = append(r.held[to], c) // tried again
						r.mu.Unlock()
						continue
					}
					r.mu.Lock()
					r.pending--
					r.mu.Unlock()
				}
			})
		}
		for _, c := range ready {
			work <- c
		}
		close(work)
		wg.Wait()
		r.mu.Lock()
		r.applying[to] = nil
		r.mu.Unlock()
	}
}

// key identifies a change: the item's keys and its write time, or that it
// is a removal.
func (c change) key() string {
	pk, _ := c.item["pk"].(*dtypes.AttributeValueMemberS)
	sk, _ := c.item["sk"].(*dtypes.AttributeValueMemberS)
	k := ""
	if pk != nil && sk != nil {
		k = pk.Value + "\x00" + sk.Value + "\x00"
	}
	if c.remove {
		return k + "removed"
	}
	if ts, ok := c.item[stampAttr].(*dtypes.AttributeValueMemberN); ok {
		return k + ts.Value
	}
	return k
}

// echo notes a change applied to a replica, whose stream brings it back.
func (r *replicator) echo(to int, c change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.echoes[to] == nil {
		r.echoes[to] = map[string]bool{}
	}
	r.echoes[to][c.key()] = true
}

// apply writes a change to a replica, last writer wins.
func (r *replicator) apply(ctx context.Context, to int, c change) error {
	table := aws.String(r.tables[to])
	if c.remove {
		out, err := r.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: table, Key: c.item, ReturnValues: dtypes.ReturnValueAllOld})
		if err == nil && len(out.Attributes) > 0 {
			r.echo(to, c)
		}
		return err
	}
	ts, ok := c.item[stampAttr].(*dtypes.AttributeValueMemberN)
	if !ok {
		ts = &dtypes.AttributeValueMemberN{Value: "0"}
	}
	_, err := r.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: table, Item: c.item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #ts < :ts"),
		ExpressionAttributeNames:  map[string]string{"#ts": stampAttr},
		ExpressionAttributeValues: map[string]dtypes.AttributeValue{":ts": ts},
	})
	var ccf *dtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		r.mu.Lock()
		r.dropped++
		r.mu.Unlock()
		return nil // older than what the replica holds, or its own echo
	}
	if err == nil {
		r.echo(to, c)
		r.mu.Lock()
		r.applied++
		r.mu.Unlock()
	}
	return err
}

// backlog is how many changes from or to region, read before t, wait to
// be applied.
func (r *replicator) backlog(region int, t time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, waiting := range [][][]change{r.held, r.applying} {
		for to, cs := range waiting {
			for _, c := range cs {
				if (to == region || c.from == region) && c.at.Before(t) {
					n++
				}
			}
		}
	}
	return n
}

// drained reports whether every change read has been applied (none held),
// and whether the streams have been quiet for quiet.
func (r *replicator) drained(quiet time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending > 0 {
		return false
	}
	for _, t := range r.lastSeen {
		if time.Since(t) < quiet {
			return false
		}
	}
	return true
}

// fromStream converts a stream record's image to the table API's values.
func fromStream(img map[string]stypes.AttributeValue) map[string]dtypes.AttributeValue {
	out := make(map[string]dtypes.AttributeValue, len(img))
	for k, v := range img {
		out[k] = convert(v)
	}
	return out
}

func convert(v stypes.AttributeValue) dtypes.AttributeValue {
	switch v := v.(type) {
	case *stypes.AttributeValueMemberS:
		return &dtypes.AttributeValueMemberS{Value: v.Value}
	case *stypes.AttributeValueMemberN:
		return &dtypes.AttributeValueMemberN{Value: v.Value}
	case *stypes.AttributeValueMemberB:
		return &dtypes.AttributeValueMemberB{Value: v.Value}
	case *stypes.AttributeValueMemberBOOL:
		return &dtypes.AttributeValueMemberBOOL{Value: v.Value}
	case *stypes.AttributeValueMemberNULL:
		return &dtypes.AttributeValueMemberNULL{Value: v.Value}
	case *stypes.AttributeValueMemberSS:
		return &dtypes.AttributeValueMemberSS{Value: v.Value}
	case *stypes.AttributeValueMemberNS:
		return &dtypes.AttributeValueMemberNS{Value: v.Value}
	case *stypes.AttributeValueMemberBS:
		return &dtypes.AttributeValueMemberBS{Value: v.Value}
	case *stypes.AttributeValueMemberL:
		l := make([]dtypes.AttributeValue, len(v.Value))
		for i, x := range v.Value {
			l[i] = convert(x)
		}
		return &dtypes.AttributeValueMemberL{Value: l}
	case *stypes.AttributeValueMemberM:
		return &dtypes.AttributeValueMemberM{Value: fromStream(v.Value)}
	}
	return &dtypes.AttributeValueMemberNULL{Value: true}
}
