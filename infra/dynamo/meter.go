package dynamo

import (
	"context"
	"errors"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Meter adds up what DynamoDB calls cost while it rides in a context: round
// trips, the capacity units DynamoDB reports for them, and those it bills
// for a write whose condition failed, which it does not report. Benchmarks and
// metrics read it per command. It is safe for concurrent use.
type Meter struct {
	mu         sync.Mutex
	roundTrips int
	readUnits  float64
	writeUnits float64
	lostWrites int
}

// Usage is a meter's reading.
type Usage struct {
	RoundTrips int
	ReadUnits  float64
	// WriteUnits counts refused conditional writes too, as DynamoDB bills
	// them.
	WriteUnits float64
	// LostWrites is how many conditional writes failed their condition.
	LostWrites int
}

// Usage returns what the meter has counted so far.
func (m *Meter) Usage() Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Usage{m.roundTrips, m.readUnits, m.writeUnits, m.lostWrites}
}

type meterKey struct{}

// WithMeter returns a context whose DynamoDB calls are counted in m.
func WithMeter(ctx context.Context, m *Meter) context.Context {
	return context.WithValue(ctx, meterKey{}, m)
}

// record counts one round trip and the capacity it consumed. read tells
// whether the units are read units (Query) or write units.
func record(ctx context.Context, read bool, used ...types.ConsumedCapacity) {
	m, _ := ctx.Value(meterKey{}).(*Meter)
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roundTrips++
	for _, c := range used {
		if c.CapacityUnits == nil {
			continue
		}
		if read {
			m.readUnits += *c.CapacityUnits
		} else {
			m.writeUnits += *c.CapacityUnits
		}
	}
}

func one(c *types.ConsumedCapacity) []types.ConsumedCapacity {
	if c == nil {
		return nil
	}
	return []types.ConsumedCapacity{*c}
}

// recordRefused counts a write DynamoDB refused: one round trip and, when
// a condition failed, the write units DynamoDB bills for it all the same,
// which no response reports: the larger of the item written (written, nil
// for an update) and the item in its place (old, as the failure returned
// it), a unit per KB begun; twice that in a transaction (transactional).
// A lost race also counts as a lost write.
func recordRefused(ctx context.Context, conditionFailed, transactional bool, written, old map[string]types.AttributeValue) {
	m, _ := ctx.Value(meterKey{}).(*Meter)
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roundTrips++
	if !conditionFailed {
		return
	}
	m.lostWrites++
	units := float64(max(1, (max(ItemSize(written), ItemSize(old))+1023)/1024))
	if transactional {
		units *= 2
	}
	m.writeUnits += units
}

// ItemSize is an item's size as DynamoDB counts it for capacity: each
// attribute's name and value (strings and binaries their bytes, numbers
// about one byte per two digits plus one, booleans and nulls one byte,
// lists and maps three bytes plus their elements, each one byte more).
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return numberSize(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += numberSize(s)
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 0
}

func numberSize(s string) int {
	digits := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	return (digits+1)/2 + 1
}

// recordError counts a write that failed with err (see recordRefused):
// written is the item it wrote (nil for an update).
func recordError(ctx context.Context, err error, written map[string]types.AttributeValue) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		recordRefused(ctx, true, false, written, ccf.Item)
		return
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			if r.Code != nil && *r.Code == "ConditionalCheckFailed" {
				recordRefused(ctx, true, true, written, r.Item)
				return
			}
		}
	}
	recordRefused(ctx, false, false, nil, nil)
}
