package dynamo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

// The erasure of a member's viewing data is one item in the viewing
// partition, in the history's key range (so that a history read sees it
// first): it = "erasure" while under way (the stream function's filter
// passes it), "erased" once done; at = as of when (Unix ms). With the read
// models in a table of their own (History.requests is not History.t), the
// request stays "erasure" in the requests table, and each table of read
// models holds its own item: "erasure" while that region erases, "erased"
// once it has.
const (
	erasureSK    = "h#~erasure"
	kindErasure  = "erasure"
	kindErased   = "erased"
	historyUpper = "h#~~" // above every history key and the erasure
)

// MarshalErasure is the item of a pending erasure; the embedded store's
// stream feed builds the same record from it.
func MarshalErasure(member string, at time.Time) map[string]types.AttributeValue {
	item := key(ViewingPartition(member), erasureSK)
	item["it"], item["at"] = str(kindErasure), num(ms(at))
	return item
}

// UnmarshalErasure reads a pending erasure item, as a stream record's new
// image carries it. ok is false for items of other kinds.
func UnmarshalErasure(av map[string]types.AttributeValue) (member string, at time.Time, ok bool, err error) {
	if k, _ := strOf(av, "it"); k != kindErasure {
		return "", time.Time{}, false, nil
	}
	pk, _ := strOf(av, "pk")
	v, hasAt := numOf(av, "at")
	member, found := memberOf(av, viewingPrefix)
	if !found || !hasAt {
		return "", time.Time{}, false, fmt.Errorf("erasure item %q: bad key or time", pk)
	}
	return member, fromMs(v), true, nil
}

// BeginErasure implements viewing.HistoryStore: a strongly consistent read
// of the erasure item (of the request and of this region's read models,
// when they are apart), the deletion of the screens and rows, then the
// erasure item, written on the condition that it is still as read (and the
// read models' own, when apart).
func (s *History) BeginErasure(ctx context.Context, member string, at time.Time) error {
	pk := ViewingPartition(member)
	held, err := s.requests.get(ctx, key(pk, erasureSK), true)
	if err != nil {
		return fmt.Errorf("read the erasure of %s: %w", kernel.Pseudonym(member), err)
	}
	requested, _ := numOf(held, "at")
	pending := requested > 0
	if k, _ := strOf(held, "it"); k == kindErased {
		pending = false
	} else if pending && s.apart() {
		mark, err := s.t.get(ctx, key(pk, erasureSK), true)
		if err != nil {
			return fmt.Errorf("read the erasure of %s: %w", kernel.Pseudonym(member), err)
		}
		k, _ := strOf(mark, "it")
		done, _ := numOf(mark, "at")
		pending = !(k == kindErased && done >= requested)
	}
	if pending && ms(at.Add(-viewing.StaleErasure)) <= requested {
		return viewing.ErrErasurePending
	}
	// None under way, or one under way for longer than StaleErasure: lost,
	// started again below.
	if err := s.views.endScreens(ctx, member); err != nil {
		return fmt.Errorf("end the screens of %s: %w", kernel.Pseudonym(member), err)
	}
	var rows []map[string]types.AttributeValue
	if err := s.t.queryPrefix(ctx, pk, []string{rowPrefix}, func(item map[string]types.AttributeValue) {
		rows = append(rows, keyOf(item))
	}); err != nil {
		return fmt.Errorf("read the rows of %s: %w", kernel.Pseudonym(member), err)
	}
	if err := s.t.batchWrite(ctx, deletes(rows)); err != nil {
		return fmt.Errorf("delete the rows of %s: %w", kernel.Pseudonym(member), err)
	}
	cond, names, values := "attribute_not_exists(sk)", map[string]string(nil), map[string]types.AttributeValue(nil)
	if requested > 0 {
		cond, names, values = "#at = :seen", map[string]string{"#at": "at"}, map[string]types.AttributeValue{":seen": num(requested)}
	}
	err = s.requests.put(ctx, MarshalErasure(member, at), cond, names, values, false)
	if _, failed := failedCondition(err); failed {
		return viewing.ErrErasurePending // another request got there first
	}
	if err == nil && s.apart() {
		// This region's read models answer "under way" at once; the other
		// regions' do from when their stream functions see the request.
		err = s.t.put(ctx, MarshalErasure(member, at), "", nil, nil, false)
	}
	if err != nil {
		return fmt.Errorf("write the erasure of %s: %w", kernel.Pseudonym(member), unavailable(err))
	}
	return nil
}

// apart reports whether the erasure requests are in another table than the
// read models.
func (s *History) apart() bool { return s.requests != s.t }

// EraseViewing implements viewing.HistoryStore: strongly consistent Queries
// of the member's rows and history, BatchWriteItem deletes of what is older
// than the erasure, the same of its resume points and screens (Views), then
// the erasure item marked done (on the condition that it is this erasure).
func (s *History) EraseViewing(ctx context.Context, member string, at time.Time) error {
	cut := ms(at)
	pk := ViewingPartition(member)
	held, err := s.t.get(ctx, key(pk, erasureSK), true)
	if err != nil {
		return fmt.Errorf("read the erasure of %s: %w", kernel.Pseudonym(member), err)
	}
	if k, _ := strOf(held, "it"); k == kindErased {
		if v, _ := numOf(held, "at"); v == cut {
			return nil // carried out already (a record delivered again): what came after it stays
		}
	}
	if s.apart() {
		// This region's history answers "under way" while it erases.
		err := s.t.put(ctx, MarshalErasure(member, at), "attribute_not_exists(sk) OR #at < :at",
			map[string]string{"#at": "at"}, map[string]types.AttributeValue{":at": num(cut)}, false)
		if _, failed := failedCondition(err); !failed && err != nil {
			return fmt.Errorf("mark the erasure of %s: %w", kernel.Pseudonym(member), unavailable(err))
		}
	}
	var keys []map[string]types.AttributeValue
	err = s.t.queryPrefix(ctx, pk, []string{rowPrefix, historyPrefix}, func(item map[string]types.AttributeValue) {
		sk, _ := strOf(item, "sk")
		if sk == erasureSK {
			return
		}
		if strings.HasPrefix(sk, historyPrefix) {
			// Only views started before the erasure.
			if v, ok := numOf(item, "sa"); ok && v >= cut {
				return
			}
		}
		keys = append(keys, keyOf(item))
	})
	if err != nil {
		return fmt.Errorf("read the viewing data of %s: %w", kernel.Pseudonym(member), err)
	}
	if err := s.t.batchWrite(ctx, deletes(keys)); err != nil {
		return fmt.Errorf("erase the viewing data of %s: %w", kernel.Pseudonym(member), err)
	}
	if err := s.views.eraseBefore(ctx, member, cut); err != nil {
		return fmt.Errorf("erase the viewing data of %s: %w", kernel.Pseudonym(member), err)
	}
	// Marked done as of cut, unless a later erasure is under way here (its
	// own record comes): with the read models apart, the mark is this
	// region's own and may not exist yet.
	_, _, err = s.t.update(ctx, key(pk, erasureSK), "SET #it = :done, #at = :at", "attribute_not_exists(sk) OR #at <= :at",
		map[string]types.AttributeValue{":done": str(kindErased), ":at": num(cut)}, false)
	if err != nil {
		return fmt.Errorf("mark the erasure of %s done: %w", kernel.Pseudonym(member), err)
	}
	// A failed condition: another erasure since; it is that one's to mark.
	return nil
}

// Erasures implements viewing.HistoryStore with one eventually consistent
// BatchGetItem of the members' erasure items (more if over 100 members).
func (s *History) Erasures(ctx context.Context, members []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	keys := make([]map[string]types.AttributeValue, len(members))
	for i, m := range members {
		keys[i] = key(ViewingPartition(m), erasureSK)
	}
	err := s.requests.batchGet(ctx, keys, false, func(item map[string]types.AttributeValue) error {
		pk, _ := strOf(item, "pk")
		member, ok := memberOf(item, viewingPrefix)
		at, hasAt := numOf(item, "at")
		if !ok || !hasAt {
			return fmt.Errorf("erasure item %q without member or time", pk)
		}
		out[member] = fromMs(at)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ViewingMembers calls fn with every member that has a viewing history:
// one Scan of the table (history items only), a member once (a partition's
// items come together).
func (s *History) ViewingMembers(ctx context.Context, fn func(member string) error) error {
	return s.viewingMembers(ctx, &dynamodb.ScanInput{}, fn)
}

// ViewingMembersOf calls fn with every member with a viewing history in
// segment of total of a parallel Scan, each once (a partition's items all
// fall in one segment, and come together): the members a job's slice
// handles.
func (s *History) ViewingMembersOf(ctx context.Context, segment, total int, fn func(member string) error) error {
	return s.viewingMembers(ctx, &dynamodb.ScanInput{Segment: aws.Int32(int32(segment)), TotalSegments: aws.Int32(int32(total))}, fn)
}

func (s *History) viewingMembers(ctx context.Context, in *dynamodb.ScanInput, fn func(member string) error) error {
	last := ""
	in.FilterExpression = aws.String("begins_with(pk, :v) AND begins_with(sk, :h) AND #it = :k")
	in.ProjectionExpression = aws.String("pk")
	in.ExpressionAttributeNames = map[string]string{"#it": "it"}
	in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": str(viewingPrefix), ":h": str(historyPrefix), ":k": str(kindHistory)}
	return s.t.scan(ctx, in, func(item map[string]types.AttributeValue) error {
		member, ok := memberOf(item, viewingPrefix)
		if !ok || member == last {
			return nil
		}
		last = member
		return fn(member)
	})
}

// endScreens deletes every screen of member: an erasure ends them.
func (s *Views) endScreens(ctx context.Context, member string) error {
	var keys []map[string]types.AttributeValue
	if err := s.t.queryPrefix(ctx, ViewingPartition(member), []string{screenPrefix}, func(item map[string]types.AttributeValue) {
		keys = append(keys, keyOf(item))
	}); err != nil {
		return err
	}
	return s.t.batchWrite(ctx, deletes(keys))
}

// eraseBefore erases what member's screens and resume points hold of views
// started before cut (Unix ms): the screens of such views and the resume
// points without a position reported since are deleted; a resume point with
// a position reported since keeps it, but forgets the time watched and the
// running totals of views from before.
func (s *Views) eraseBefore(ctx context.Context, member string, cut int64) error {
	var screens, points []map[string]types.AttributeValue
	var kept []map[string]types.AttributeValue
	err := s.t.queryPrefix(ctx, ViewingPartition(member), []string{screenPrefix}, func(item map[string]types.AttributeValue) {
		if v, ok := numOf(item, "sa"); ok && v >= cut {
			return
		}
		screens = append(screens, keyOf(item))
	})
	if err == nil {
		err = s.p.queryPrefix(ctx, ViewingPartition(member), []string{resumePrefix}, func(item map[string]types.AttributeValue) {
			if v, ok := numOf(item, "at"); ok && v >= cut {
				kept = append(kept, item)
				return
			}
			points = append(points, keyOf(item))
		})
	}
	if err != nil {
		return err
	}
	if err := s.t.batchWrite(ctx, deletes(screens)); err != nil {
		return err
	}
	if err := s.p.batchWrite(ctx, deletes(points)); err != nil {
		return err
	}
	for _, item := range kept {
		var remove []string
		for slot := range licensing.MaxScreens {
			if v, ok := numOf(item, openAttr(slot, "s")); ok && v < cut {
				for _, f := range openFields {
					remove = append(remove, "#"+openAttr(slot, f))
				}
			}
		}
		update := "SET #w = :zero"
		if len(remove) > 0 {
			update += " REMOVE " + strings.Join(remove, ", ")
		}
		if _, _, err := s.p.update(ctx, keyOf(item), update, "attribute_exists(sk)", map[string]types.AttributeValue{":zero": num(0)}, false); err != nil {
			return err
		}
	}
	return nil
}
