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
	// The former view's start's idempotency key (a digest) and request: a
	// retry of it is told the view ended.
	FormerKey         string `dynamodbav:"fk,omitempty"`
	FormerFingerprint string `dynamodbav:"ff,omitempty"`
	// The former view's device, last report and totals: the stream
	// function closes it with them.
	FormerDevice     string `dynamodbav:"fdv,omitempty"`
	FormerLastSeen   int64  `dynamodbav:"fls,omitempty"`
	FormerPosition   int64  `dynamodbav:"fpo,omitempty"`
	FormerWatched    int64  `dynamodbav:"fwm,omitempty"`
	FormerCheckpoint int64  `dynamodbav:"fcw,omitempty"`
	// The view's running totals (viewing.View): time watched, the start
	// plus the time not watched, the time watched at the last checkpoint
	// and the one before; and whether this write is one the stream
	// function handles (the table's filter passes only those).
	Watched        int64 `dynamodbav:"wm"`
	Unwatched      int64 `dynamodbav:"sp,omitempty"`
	Checkpoint     int64 `dynamodbav:"cw"`
	PrevCheckpoint int64 `dynamodbav:"pcw"`
	Handled        bool  `dynamodbav:"ck"`
	// Live is the shard of the index of open views (viewing.LiveShard) the
	// sweep of silent views reads, set while the view is open: at its
	// start, and by a heartbeat after its close; removed by its stop, end
	// or close. Its start time (sa) is the index's sort key. Heartbeats
	// change neither, so they never write the index.
	Live string `dynamodbav:"lv,omitempty"`
	// Closed is when the sweep closed the view as silent.
	Closed int64 `dynamodbav:"xc,omitempty"`
}

// LiveIndex is the table's sparse global secondary index of open views:
// partition key lv ("lv#" and the shard, two digits), sort key sa (the
// view's start), keys only.
const LiveIndex = "live"

func liveKey(shard int) string { return fmt.Sprintf("lv#%02d", shard) }

// MarshalScreen is the item a member's screen slot holding v is stored as;
// the embedded store's stream feed builds the same records from it.
func MarshalScreen(member string, v *viewing.View) (map[string]types.AttributeValue, error) {
	it := screenItem{
		PK: ViewingPartition(member), SK: slotSK(v.Slot), Kind: kindScreen, ID: v.ID, Slot: v.Slot,
		Device: v.Device, Title: v.Title, Profile: v.Profile, Runtime: v.Runtime.Milliseconds(),
		Started: ms(v.Started), LastSeen: ms(v.LastSeen), PrevSeen: ms(v.PrevSeen), Expires: ms(v.Expires),
		Position: v.PositionMs, State: string(v.State), PrevState: string(v.PrevState), Seq: v.Seq,
		Ended: string(v.Ended), EndedAt: ms(v.EndedAt), Key: v.Key, Fingerprint: v.Fingerprint,
		Watched: v.WatchedMs, Unwatched: ms(v.Unwatched), Checkpoint: v.CheckpointMs, PrevCheckpoint: v.PrevCheckpointMs, Handled: v.Checkpoint,
		Closed: ms(v.Closed),
	}
	if v.Ended == "" && v.Closed.IsZero() {
		it.Live = liveKey(viewing.LiveShard(member))
	}
	if v.Former != nil {
		f := v.Former
		it.FormerID, it.FormerReason = f.ID, string(f.Reason)
		it.FormerTitle, it.FormerProfile, it.FormerStarted = f.Title, f.Profile, ms(f.Started)
		it.FormerKey, it.FormerFingerprint = f.KeyDigest, f.Fingerprint
		it.FormerDevice, it.FormerLastSeen, it.FormerPosition, it.FormerWatched, it.FormerCheckpoint = f.Device, ms(f.LastSeen), f.PositionMs, f.WatchedMs, f.CheckpointMs
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
		WatchedMs: it.Watched, Unwatched: fromMs(it.Unwatched), CheckpointMs: it.Checkpoint, PrevCheckpointMs: it.PrevCheckpoint, Checkpoint: it.Handled,
		Closed: fromMs(it.Closed),
	}
	if it.FormerID != "" {
		v.Former = &viewing.Former{ID: it.FormerID, Reason: viewing.EndReason(it.FormerReason),
			Title: it.FormerTitle, Profile: it.FormerProfile, Started: fromMs(it.FormerStarted),
			KeyDigest: it.FormerKey, Fingerprint: it.FormerFingerprint, Device: it.FormerDevice,
			LastSeen: fromMs(it.FormerLastSeen), PositionMs: it.FormerPosition, WatchedMs: it.FormerWatched, CheckpointMs: it.FormerCheckpoint}
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
	// The running totals (viewing.View.Beat): the time since the last
	// report counts if this one says playing. One conditional write, for a
	// heartbeat within MaxResumedSpan of the last; after a longer gap the
	// item comes back and the write is made again from it, exactly.
	values := map[string]types.AttributeValue{
		":vid": str(b.View), ":dev": str(b.Device), ":at": num(ms(b.At)), ":ex": num(ms(b.Expires)),
		":pos": num(b.PositionMs), ":st": str(string(b.State)), ":sq": num(b.Seq), ":zero": num(0), ":ck": &types.AttributeValueMemberBOOL{Value: b.Checkpoint},
	}
	update := "SET #pls = #ls, #pst = #st, #ls = :at, #ex = :ex, #pos = :pos, #st = :st, #sq = :sq, #ck = :ck"
	// A view the sweep closed as silent takes the exact path below, which
	// puts it back in the index of open views.
	cond := "#vid = :vid AND #dev = :dev AND attribute_not_exists(#er) AND attribute_not_exists(#xc) AND #sq < :sq AND (#rt = :zero OR #rt >= :pos)"
	if b.State == viewing.Playing {
		// Playing: the time watched is now - (start + time not watched);
		// the latter stays.
		update += ", #wm = :at - if_not_exists(#sp, :at)"
		if b.Checkpoint {
			update += ", #pcw = if_not_exists(#cw, :zero), #cw = :at - if_not_exists(#sp, :at)"
		}
		cond += " AND #ls >= :floor"
		values[":floor"] = num(ms(b.At.Add(-viewing.MaxResumedSpan)))
	} else {
		// Paused: the time watched stays; the time not watched grows.
		update += ", #sp = :at - if_not_exists(#wm, :zero)"
		if b.Checkpoint {
			update += ", #pcw = if_not_exists(#cw, :zero), #cw = if_not_exists(#wm, :zero)"
		}
	}
	held, applied, err := s.change(ctx, member, b.View, update, cond, values)
	for attempt := 0; err == nil && !applied && held != nil && attempt < 3; attempt++ {
		if repeated, cerr := viewing.CheckBeat(held, b); repeated || cerr != nil {
			return held, false, nil // refused or repeated: the service says which
		}
		// A gap over MaxResumedSpan, or a view closed as silent: write what
		// the rules say, from the item as it was, if it is still so.
		next := *held
		next.Beat(b)
		held, applied, err = s.change(ctx, member, b.View,
			"SET #pls = #ls, #pst = #st, #ls = :at, #ex = :ex, #pos = :pos, #st = :st, #sq = :sq, #ck = :ck, #wm = :wm, #sp = :sp, #cw = :cw, #pcw = :pcw, #lv = :lv REMOVE #xc",
			"#vid = :vid AND attribute_not_exists(#er) AND #sq = :held AND #ls = :heldls",
			map[string]types.AttributeValue{
				":vid": str(b.View), ":at": num(ms(b.At)), ":ex": num(ms(b.Expires)), ":pos": num(b.PositionMs), ":st": str(string(b.State)),
				":sq": num(b.Seq), ":ck": &types.AttributeValueMemberBOOL{Value: b.Checkpoint}, ":wm": num(next.WatchedMs), ":sp": num(ms(next.Unwatched)),
				":cw": num(next.CheckpointMs), ":pcw": num(next.PrevCheckpointMs), ":held": num(held.Seq), ":heldls": num(ms(held.LastSeen)),
				":lv": str(liveKey(viewing.LiveShard(member))),
			})
	}
	return held, applied, err
}

// Stop implements viewing.ScreenStore like Beat, with viewing.CheckStop's condition.
func (s *Views) Stop(ctx context.Context, member string, st viewing.Stop) (*viewing.View, bool, error) {
	return s.change(ctx, member, st.View,
		"SET #pls = #ls, #pst = #st, #ls = :at, #pos = :pos, #er = :er, #ea = :at, #ck = :ck REMOVE #lv",
		"#vid = :vid AND #dev = :dev AND attribute_not_exists(#er) AND (#rt = :zero OR #rt >= :pos)",
		map[string]types.AttributeValue{
			":vid": str(st.View), ":dev": str(st.Device), ":at": num(ms(st.At)), ":pos": num(st.PositionMs),
			":er": str(string(viewing.Stopped)), ":zero": num(0), ":ck": &types.AttributeValueMemberBOOL{Value: true},
		})
}

// End implements viewing.ScreenStore like Beat, with viewing.CheckEnd's condition.
func (s *Views) End(ctx context.Context, member string, e viewing.End) (*viewing.View, bool, error) {
	cond := "#vid = :vid AND attribute_not_exists(#er)"
	values := map[string]types.AttributeValue{":vid": str(e.View), ":er": str(string(e.Reason)), ":at": num(ms(e.At)), ":ck": &types.AttributeValueMemberBOOL{Value: true}}
	if e.Device != "" {
		cond += " AND #dev = :dev"
		values[":dev"] = str(e.Device)
	}
	return s.change(ctx, member, e.View, "SET #pls = #ls, #pst = #st, #er = :er, #ea = :at, #ck = :ck REMOVE #lv", cond, values)
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

var _ viewing.SilentStore = (*Views)(nil)

// Silent implements viewing.SilentStore: a Query of the shard in the index
// of open views (keys only), then eventually consistent BatchGetItems of
// the slots it names, 100 at a time.
func (s *Views) Silent(ctx context.Context, shard int, before time.Time, fn func(member string, v *viewing.View) error) error {
	var keys []map[string]types.AttributeValue
	read := func() error {
		err := s.t.batchGet(ctx, keys, false, func(item map[string]types.AttributeValue) error {
			member, v, ok, err := UnmarshalScreen(item)
			if err != nil || !ok || v.Ended != "" || !v.Closed.IsZero() {
				return err // changed since the index was read
			}
			return fn(member, v)
		})
		keys = keys[:0]
		return err
	}
	err := s.t.query(ctx, &dynamodb.QueryInput{
		IndexName:              aws.String(LiveIndex),
		KeyConditionExpression: aws.String("lv = :lv AND sa < :before"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":lv": str(liveKey(shard)), ":before": num(ms(before)),
		},
	}, func(item map[string]types.AttributeValue) error {
		keys = append(keys, map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]})
		if len(keys) == maxBatchGet {
			return read()
		}
		return nil
	})
	if err == nil && len(keys) > 0 {
		err = read()
	}
	if err != nil {
		return fmt.Errorf("sweep shard %d: %w", shard, err)
	}
	return nil
}

// CloseSilent implements viewing.SilentStore: one conditional UpdateItem,
// on the slot still holding v as it was (same heartbeat), open.
func (s *Views) CloseSilent(ctx context.Context, member string, v *viewing.View, now time.Time) (bool, error) {
	_, applied, err := s.change(ctx, member, v.ID,
		"SET #pcw = #cw, #cw = #wm, #ck = :ck, #xc = :now REMOVE #lv",
		"#vid = :vid AND #sq = :sq AND #ls = :ls AND attribute_not_exists(#er) AND attribute_not_exists(#xc)",
		map[string]types.AttributeValue{
			":vid": str(v.ID), ":sq": num(v.Seq), ":ls": num(ms(v.LastSeen)), ":now": num(ms(now)), ":ck": &types.AttributeValueMemberBOOL{Value: true},
		})
	return applied, err
}
