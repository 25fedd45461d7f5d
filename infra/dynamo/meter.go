package dynamo

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Meter adds up what DynamoDB calls cost while it rides in a context: round
// trips and the capacity units DynamoDB reports for them. Benchmarks and
// metrics read it per command. It is safe for concurrent use.
type Meter struct {
	mu         sync.Mutex
	roundTrips int
	readUnits  float64
	writeUnits float64
}

// Usage is a meter's reading.
type Usage struct {
	RoundTrips int
	ReadUnits  float64
	WriteUnits float64
}

// Usage returns what the meter has counted so far.
func (m *Meter) Usage() Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Usage{m.roundTrips, m.readUnits, m.writeUnits}
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
