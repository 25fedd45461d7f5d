package dynamo

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

// Change is what one record of the table's stream says, decoded: an event
// appended to a member's log, a write of one of the member's screens, or
// the start of an erasure of the member's viewing data. The stream function
// reads records only through it: the key layout stays in this package.
type Change struct {
	// Partition is the item's partition key: records of one partition come
	// in the order they were written, and are handled in that order.
	Partition string
	// Member is the member the item belongs to ("" if none can be read).
	Member string
	// Event is the event appended (upcast and decoded), for a log record.
	Event *licensing.Event
	// View is what the screen slot now holds, for a screen write.
	View *viewing.View
	// Erasure is the time as of which the member's viewing data is to be
	// erased, for the start of an erasure.
	Erasure time.Time
}

// DecodeChange reads one stream record: its event name (INSERT, MODIFY or
// REMOVE), its keys and its new image. ok is false for a record that says
// nothing the stream function handles (a removal, a snapshot, a counter);
// the template's filter keeps most of those out, but a local feed may pass
// them. An error is a record that cannot be read (a poison record); the
// change then holds the partition and member, where they could be read.
func DecodeChange(eventName string, keys, image map[string]types.AttributeValue) (c Change, ok bool, err error) {
	c.Partition, _ = strOf(keys, "pk")
	if m, viewingData := memberOf(keys, viewingPrefix); viewingData {
		c.Member = m
		if eventName != "INSERT" && eventName != "MODIFY" {
			return c, false, nil
		}
		if member, at, isErasure, err := UnmarshalErasure(image); isErasure || err != nil {
			if err == nil && member != c.Member {
				err = fmt.Errorf("erasure of %s in the partition of %s", kernel.Pseudonym(member), kernel.Pseudonym(c.Member))
			}
			c.Erasure = at
			return c, err == nil, err
		}
		member, v, isScreen, err := UnmarshalScreen(image)
		if err != nil || !isScreen {
			return c, false, err
		}
		if member != c.Member {
			return c, false, fmt.Errorf("screen item of %s in the partition of %s", kernel.Pseudonym(member), kernel.Pseudonym(c.Member))
		}
		c.View = v
		return c, true, nil
	}
	c.Member = c.Partition
	if m, logData := memberOf(keys, logPrefix); logData {
		c.Member = m
	}
	if eventName != "INSERT" {
		return c, false, nil
	}
	stored, isEvent, err := UnmarshalStoredEvent(image)
	if err != nil || !isEvent {
		return c, false, err
	}
	// Upcast and decode now: a record that cannot be read is a poison
	// record, reported rather than skipped.
	e, err := licensing.DecodeEvent(stored)
	if err != nil {
		return c, false, err
	}
	c.Event = &e
	return c, true, nil
}
