package dynamo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/viewing"
)

// Views is the members' screens and resume points, in each member's viewing
// partition: one item per screen slot ("s#00", "s#01", …; the stream
// function sees their writes), in the screens table, and one per resume
// point ("r#<profile>#<title>", "-" for the default profile; the stream
// function writes them), in the progress table. One table may be both; in
// several regions the screens are shared by every region and the resume
// points are each region's own (docs/regions.md).
type Views struct {
	t *Table // screens
	p *Table // resume points and the running totals of views
}

var (
	_ viewing.ScreenStore   = (*Views)(nil)
	_ viewing.ProgressStore = (*Views)(nil)
)

// NewViews returns the screens kept in screens and the resume points kept
// in progress (the same table, or another).
func NewViews(screens, progress *Table) *Views { return &Views{t: screens, p: progress} }

const (
	kindScreen = "screen"
	// screenPrefix starts the sort key of a screen slot.
	screenPrefix = "s#"
)

func slotSK(slot int) string { return fmt.Sprintf("%s%02d", screenPrefix, slot) }

// screenItem is a screen slot as stored: short attribute names keep a
// heartbeat's write within one write unit. Times are Unix milliseconds, so
// that conditions compare them as numbers.
type screenItem struct {
	PK           string `dynamodbav:"pk"`
	SK           string `dynamodbav:"sk"`
	Kind         string `dynamodbav:"it"`
	ID           string `dynamodbav:"vid"`
	Slot         int    `dynamodbav:"sl"`
	Device       string `dynamodbav:"dev"`
	Title        string `dynamodbav:"t"`
	Profile      string `dynamodbav:"pf,omitempty"`
	Runtime      int64  `dynamodbav:"rt"`
	Started      int64  `dynamodbav:"sa"`
	LastSeen     int64  `dynamodbav:"ls"`
	PrevSeen     int64  `dynamodbav:"pls"`
	Expires      int64  `dynamodbav:"ex"`
	Position     int64  `dynamodbav:"pos"`
	State        string `dynamodbav:"st"`
	PrevState    string `dynamodbav:"pst"`
	Seq          int64  `dynamodbav:"sq"`
	Ended        string `dynamodbav:"er,omitempty"`
	EndedAt      int64  `dynamodbav:"ea,omitempty"`
	Key          string `dynamodbav:"k,omitempty"`
	Fingerprint  string `dynamodbav:"f,omitempty"`
	FormerID     string `dynamodbav:"fv,omitempty"`
	FormerReason string `dynamodbav:"fr,omitempty"`
	// The former view's title, profile and start: the stream function
	// closes its history entry with them.
	FormerTitle   string `dynamodbav:"ft,omitempty"`
	FormerProfile string `dynamodbav:"fpf,omitempty"`
	FormerStarted int64  `dynamodbav:"fsa,omitempty"`
	// The former view's start's idempotency key and request: a retry of
	// it is told the view ended.
	FormerKey         string `dynamodbav:"fk,omitempty"`
	FormerFingerprint string `dynamodbav:"ff,omitempty"`
}

// MarshalScreen is the item a member's screen slot holding v is stored as;
// the embedded store's stream feed builds the same records from it.
func MarshalScreen(member string, v *viewing.View) (map[string]types.AttributeValue, error) {
	it := screenItem{
		PK: ViewingPartition(member), SK: slotSK(v.Slot), Kind: kindScreen, ID: v.ID, Slot: v.Slot,
		Device: v.Device, Title: v.Title, Profile: v.Profile, Runtime: v.Runtime.Milliseconds(),
		Started: ms(v.Started), LastSeen: ms(v.LastSeen), PrevSeen: ms(v.PrevSeen), Expires: ms(v.Expires),
		Position: v.PositionMs, State: string(v.State), PrevState: string(v.PrevState), Seq: v.Seq,
		Ended: string(v.Ended), EndedAt: ms(v.EndedAt), Key: v.Key, Fingerprint: v.Fingerprint,
	}
	if v.Former != nil {
		it.FormerID, it.FormerReason = v.Former.ID, string(v.Former.Reason)
		it.FormerTitle, it.FormerProfile, it.FormerStarted = v.Former.Title, v.Former.Profile, ms(v.Former.Started)
		it.FormerKey, it.FormerFingerprint = v.Former.Key, v.Former.Fingerprint
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", v, err)
	}
	return av, nil
}

// UnmarshalScreen reads a screen slot item, as stored or as a stream
// record's new image carries it. ok is false for items of other kinds.
func UnmarshalScreen(av map[string]types.AttributeValue) (member string, v *viewing.View, ok bool, err error) {
	if k, _ := av["it"].(*types.AttributeValueMemberS); k == nil || k.Value != kindScreen {
		return "", nil, false, nil
	}
	var it screenItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return "", nil, false, fmt.Errorf("unmarshal screen item: %w", err)
	}
	member, found := strings.CutPrefix(it.PK, viewingPrefix)
	if !found || it.SK != slotSK(it.Slot) {
		return "", nil, false, fmt.Errorf("screen item of %s at %s holds slot %d", kernel.Pseudonym(member), it.SK, it.Slot)
	}
	v = &viewing.View{
		ID: it.ID, Slot: it.Slot, Device: it.Device, Title: it.Title, Profile: it.Profile,
		Runtime: time.Duration(it.Runtime) * time.Millisecond, Started: fromMs(it.Started), LastSeen: fromMs(it.LastSeen),
		PrevSeen: fromMs(it.PrevSeen), Expires: fromMs(it.Expires), PositionMs: it.Position,
		State: viewing.State(it.State), PrevState: viewing.State(it.PrevState), Seq: it.Seq,
		Ended: viewing.EndReason(it.Ended), EndedAt: fromMs(it.EndedAt), Key: it.Key, Fingerprint: it.Fingerprint,
	}
	if it.FormerID != "" {
		v.Former = &viewing.Former{ID: it.FormerID, Reason: viewing.EndReason(it.FormerReason),
			Title: it.FormerTitle, Profile: it.FormerProfile, Started: fromMs(it.FormerStarted),
			Key: it.FormerKey, Fingerprint: it.FormerFingerprint}
	}
	return member, v, true, nil
}

// ReadForStart implements viewing.ScreenStore with one strongly consistent
// BatchGetItem of the n slots and the resume point (more requests only if
// DynamoDB leaves keys unprocessed).
func (s *Views) ReadForStart(ctx context.Context, member string, n int, profile, title string) ([]*viewing.View, *viewing.Resume, error) {
	pk := ViewingPartition(member)
	keys := make([]map[string]types.AttributeValue, 0, n)
	for i := range n {
		keys = append(keys, key(pk, slotSK(i)))
	}
	slots := make([]*viewing.View, n)
	var res *viewing.Resume
	err := batchGetAcross(ctx, s.t.db, true, []tableKeys{{s.t, keys}, {s.p, []map[string]types.AttributeValue{key(pk, resumeSK(profile, title))}}}, func(item map[string]types.AttributeValue) error {
		_, v, ok, err := UnmarshalScreen(item)
		switch {
		case err != nil:
			return err
		case ok && v.Slot < n:
			slots[v.Slot] = v
		case !ok:
			res, err = unmarshalResume(item)
		}
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read screens: %w", err)
	}
	return slots, res, nil
}

// Claim implements viewing.ScreenStore with one conditional PutItem of the slot.
func (s *Views) Claim(ctx context.Context, member string, c viewing.Claim, now time.Time) error {
	item, err := MarshalScreen(member, c.View)
	if err != nil {
		return err
	}
	var cond string
	var values map[string]types.AttributeValue
	switch {
	case c.Expect == "":
		cond = "attribute_not_exists(pk)"
	case c.Replace:
		cond = "#vid = :expect"
	default:
		cond = "#vid = :expect AND (attribute_exists(#er) OR #ex < :now)"
	}
	if c.Expect != "" {
		values = map[string]types.AttributeValue{":expect": str(c.Expect)}
		if !c.Replace {
			values[":now"] = num(ms(now))
		}
	}
	err = s.t.put(ctx, item, cond, names(cond), values, false)
	if _, failed := failedCondition(err); failed {
		return viewing.ErrSlotTaken
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", c.View, unavailable(err))
	}
	return nil
}

// Beat implements viewing.ScreenStore: one conditional UpdateItem of the view's
// slot, no read. The condition is viewing.CheckBeat's.
func (s *Views) Beat(ctx context.Context, member string, b viewing.Beat) (*viewing.View, bool, error) {
	return s.change(ctx, member, b.View,
		"SET #pls = #ls, #pst = #st, #ls = :at, #ex = :ex, #pos = :pos, #st = :st, #sq = :sq",
		"#vid = :vid AND #dev = :dev AND attribute_not_exists(#er) AND #sq < :sq AND (#rt = :zero OR #rt >= :pos)",
		map[string]types.AttributeValue{
			":vid": str(b.View), ":dev": str(b.Device), ":at": num(ms(b.At)), ":ex": num(ms(b.Expires)),
			":pos": num(b.PositionMs), ":st": str(string(b.State)), ":sq": num(b.Seq), ":zero": num(0),
		})
}

// Stop implements viewing.ScreenStore like Beat, with viewing.CheckStop's condition.
func (s *Views) Stop(ctx context.Context, member string, st viewing.Stop) (*viewing.View, bool, error) {
	return s.change(ctx, member, st.View,
		"SET #pls = #ls, #pst = #st, #ls = :at, #pos = :pos, #er = :er, #ea = :at",
		"#vid = :vid AND #dev = :dev AND attribute_not_exists(#er) AND (#rt = :zero OR #rt >= :pos)",
		map[string]types.AttributeValue{
			":vid": str(st.View), ":dev": str(st.Device), ":at": num(ms(st.At)), ":pos": num(st.PositionMs),
			":er": str(string(viewing.Stopped)), ":zero": num(0),
		})
}

// End implements viewing.ScreenStore like Beat, with viewing.CheckEnd's condition.
func (s *Views) End(ctx context.Context, member string, e viewing.End) (*viewing.View, bool, error) {
	cond := "#vid = :vid AND attribute_not_exists(#er)"
	values := map[string]types.AttributeValue{":vid": str(e.View), ":er": str(string(e.Reason)), ":at": num(ms(e.At))}
	if e.Device != "" {
		cond += " AND #dev = :dev"
		values[":dev"] = str(e.Device)
	}
	return s.change(ctx, member, e.View, "SET #pls = #ls, #pst = #st, #er = :er, #ea = :at", cond, values)
}

// change makes one conditional update of the slot of view id. If the
// condition fails, DynamoDB returns the item as it was, without a read.
func (s *Views) change(ctx context.Context, member, id, update, cond string, values map[string]types.AttributeValue) (*viewing.View, bool, error) {
	slot, ok := viewing.SlotOf(id)
	if !ok {
		return nil, false, fmt.Errorf("view id %q names no slot", id)
	}
	old, applied, err := s.t.update(ctx, key(ViewingPartition(member), slotSK(slot)), update, cond, values, false)
	if err != nil || applied || len(old) == 0 {
		if err != nil {
			err = fmt.Errorf("update view %s: %w", id, err)
		}
		return nil, applied, err
	}
	_, held, _, err := UnmarshalScreen(old)
	return held, false, err
}

// Views implements viewing.ScreenStore with one strongly consistent Query
// of the member's slots: a heartbeat past a plan's limit judges the views
// by it, right after a start may have written one.
func (s *Views) Views(ctx context.Context, member string) ([]*viewing.View, error) {
	var views []*viewing.View
	err := s.t.query(ctx, &dynamodb.QueryInput{
		ConsistentRead:         aws.Bool(true),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :s)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(ViewingPartition(member)), ":s": str(screenPrefix),
		},
	}, func(item map[string]types.AttributeValue) error {
		_, v, ok, err := UnmarshalScreen(item)
		if ok {
			views = append(views, v)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("query screens: %w", err)
	}
	return views, nil
}
