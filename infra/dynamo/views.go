package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

// A member's viewing data lives in a partition of its own, "v#<member>":
// one item per screen slot ("s#00", "s#01", …; the stream function sees
// their writes) and one per resume point ("r#<profile>#<title>", "-" for the
// default profile; the stream function writes them).
const (
	kindScreen = "screen"
	kindResume = "resume"
)

var (
	_ viewing.Store         = (*Store)(nil)
	_ viewing.ProgressStore = (*Store)(nil)
)

// ViewingPartition is the partition of a member's screens and resume points.
func ViewingPartition(member string) string { return "v#" + member }

func slotSK(slot int) string { return fmt.Sprintf("s#%02d", slot) }

func resumeSK(profile, title string) string {
	if profile == "" {
		profile = "-"
	}
	return "r#" + profile + "#" + title
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}
}

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
}

// resumeItem is a resume point as stored.
type resumeItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	Kind     string `dynamodbav:"it"`
	Profile  string `dynamodbav:"pf,omitempty"`
	Title    string `dynamodbav:"t"`
	Position int64  `dynamodbav:"pos"`
	At       int64  `dynamodbav:"at"`
	Device   string `dynamodbav:"dev,omitempty"`
	View     string `dynamodbav:"vid,omitempty"`
	Watched  int64  `dynamodbav:"w"`
	Version  int64  `dynamodbav:"ov,omitempty"`
	// The last stream sequence number applied from each slot, in
	// attributes sq0 … sq15, read by unmarshalResume.
}

// seqAttr is the attribute of a resume point holding the last sequence
// number applied from a screen slot.
func seqAttr(slot int) string { return "sq" + strconv.Itoa(slot) }

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMs(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
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
	member, found := strings.CutPrefix(it.PK, "v#")
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
			Title: it.FormerTitle, Profile: it.FormerProfile, Started: fromMs(it.FormerStarted)}
	}
	return member, v, true, nil
}

func unmarshalResume(av map[string]types.AttributeValue) (*viewing.Resume, error) {
	var it resumeItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, fmt.Errorf("unmarshal resume item: %w", err)
	}
	r := &viewing.Resume{Profile: it.Profile, Title: it.Title, PositionMs: it.Position, At: fromMs(it.At),
		Device: it.Device, View: it.View, WatchedMs: it.Watched, Version: it.Version}
	for slot := range licensing.MaxScreens {
		if sq, ok := av[seqAttr(slot)].(*types.AttributeValueMemberS); ok {
			if r.Seqs == nil {
				r.Seqs = map[int]string{}
			}
			r.Seqs[slot] = sq.Value
		}
		if t, ok := openTotals(av, slot); ok {
			if r.Open == nil {
				r.Open = map[int]viewing.Totals{}
			}
			r.Open[slot] = t
		}
	}
	return r, nil
}

// The running totals of a slot's open view of a title live in the title's
// resume point, in flat attributes c<slot>v (view), …d (device), …s
// (started), …w (watched), …f (furthest), …p (position), …a (last seen):
// flat, so that ADD works on them.
func openAttr(slot int, field string) string { return "c" + strconv.Itoa(slot) + field }

var openFields = []string{"v", "d", "s", "w", "f", "p", "a"}

func openTotals(av map[string]types.AttributeValue, slot int) (viewing.Totals, bool) {
	v, ok := av[openAttr(slot, "v")].(*types.AttributeValueMemberS)
	if !ok {
		return viewing.Totals{}, false
	}
	n := func(f string) int64 {
		x, _ := av[openAttr(slot, f)].(*types.AttributeValueMemberN)
		if x == nil {
			return 0
		}
		i, _ := strconv.ParseInt(x.Value, 10, 64)
		return i
	}
	d, _ := av[openAttr(slot, "d")].(*types.AttributeValueMemberS)
	t := viewing.Totals{View: v.Value, Started: fromMs(n("s")), WatchedMs: n("w"), FurthestMs: n("f"), PositionMs: n("p"), LastSeen: fromMs(n("a"))}
	if d != nil {
		t.Device = d.Value
	}
	return t, true
}

// ReadForStart implements viewing.Store with one strongly consistent
// BatchGetItem of the n slots and the resume point (more requests only if
// DynamoDB leaves keys unprocessed).
func (s *Store) ReadForStart(ctx context.Context, member string, n int, profile, title string) ([]*viewing.View, *viewing.Resume, error) {
	pk := ViewingPartition(member)
	keys := make([]map[string]types.AttributeValue, 0, n+1)
	for i := range n {
		keys = append(keys, key(pk, slotSK(i)))
	}
	keys = append(keys, key(pk, resumeSK(profile, title)))
	slots := make([]*viewing.View, n)
	var res *viewing.Resume
	err := s.batchGet(ctx, keys, true, func(item map[string]types.AttributeValue) error {
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

// Claim implements viewing.Store with one conditional PutItem of the slot.
func (s *Store) Claim(ctx context.Context, member string, c viewing.Claim, now time.Time) error {
	item, err := MarshalScreen(member, c.View)
	if err != nil {
		return err
	}
	in := &dynamodb.PutItemInput{TableName: &s.table, Item: item, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal}
	switch {
	case c.Expect == "":
		in.ConditionExpression = aws.String("attribute_not_exists(pk)")
	case c.Replace:
		in.ConditionExpression = aws.String("#vid = :expect")
	default:
		in.ConditionExpression = aws.String("#vid = :expect AND (attribute_exists(#er) OR #ex < :now)")
	}
	if c.Expect != "" {
		in.ExpressionAttributeNames = names(*in.ConditionExpression)
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":expect": str(c.Expect)}
		if !c.Replace {
			in.ExpressionAttributeValues[":now"] = num(ms(now))
		}
	}
	out, err := s.db.PutItem(ctx, in)
	if err != nil {
		record(ctx, false)
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return viewing.ErrSlotTaken
		}
		return fmt.Errorf("claim %s: %w", c.View, unavailable(err))
	}
	record(ctx, false, one(out.ConsumedCapacity)...)
	return nil
}

// Beat implements viewing.Store: one conditional UpdateItem of the view's
// slot, no read. The condition is viewing.CheckBeat's.
func (s *Store) Beat(ctx context.Context, member string, b viewing.Beat) (*viewing.View, bool, error) {
	return s.change(ctx, member, b.View,
		"SET #pls = #ls, #pst = #st, #ls = :at, #ex = :ex, #pos = :pos, #st = :st, #sq = :sq",
		"#vid = :vid AND #dev = :dev AND attribute_not_exists(#er) AND #ex >= :at AND #sq < :sq AND (#rt = :zero OR #rt >= :pos)",
		map[string]types.AttributeValue{
			":vid": str(b.View), ":dev": str(b.Device), ":at": num(ms(b.At)), ":ex": num(ms(b.Expires)),
			":pos": num(b.PositionMs), ":st": str(string(b.State)), ":sq": num(b.Seq), ":zero": num(0),
		})
}

// Stop implements viewing.Store like Beat, with viewing.CheckStop's condition.
func (s *Store) Stop(ctx context.Context, member string, st viewing.Stop) (*viewing.View, bool, error) {
	return s.change(ctx, member, st.View,
		"SET #pls = #ls, #pst = #st, #ls = :at, #pos = :pos, #er = :er, #ea = :at",
		"#vid = :vid AND #dev = :dev AND attribute_not_exists(#er) AND #ex >= :at AND (#rt = :zero OR #rt >= :pos)",
		map[string]types.AttributeValue{
			":vid": str(st.View), ":dev": str(st.Device), ":at": num(ms(st.At)), ":pos": num(st.PositionMs),
			":er": str(string(viewing.Stopped)), ":zero": num(0),
		})
}

// End implements viewing.Store like Beat, with viewing.CheckEnd's condition.
func (s *Store) End(ctx context.Context, member string, e viewing.End) (*viewing.View, bool, error) {
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
func (s *Store) change(ctx context.Context, member, id, update, cond string, values map[string]types.AttributeValue) (*viewing.View, bool, error) {
	slot, ok := viewing.SlotOf(id)
	if !ok {
		return nil, false, fmt.Errorf("view id %q names no slot", id)
	}
	old, applied, err := s.update(ctx, key(ViewingPartition(member), slotSK(slot)), update, cond, values)
	if err != nil || applied || len(old) == 0 {
		if err != nil {
			err = fmt.Errorf("update view %s: %w", id, err)
		}
		return nil, applied, err
	}
	_, held, _, err := UnmarshalScreen(old)
	return held, false, err
}

// update makes one conditional UpdateItem, every attribute named through a
// placeholder. When the condition fails it returns the item as it was
// (empty if there was none): DynamoDB sends it back, without another read.
func (s *Store) update(ctx context.Context, k map[string]types.AttributeValue, update, cond string, values map[string]types.AttributeValue) (old map[string]types.AttributeValue, applied bool, err error) {
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: k,
		UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names(update + " " + cond), ExpressionAttributeValues: values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	})
	if err == nil {
		record(ctx, false, one(out.ConsumedCapacity)...)
		return nil, true, nil
	}
	record(ctx, false)
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return nil, false, unavailable(err)
	}
	return ccf.Item, false, nil
}

// Views implements viewing.Store with one Query of the member's slots.
func (s *Store) Views(ctx context.Context, member string) ([]*viewing.View, error) {
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :s)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(ViewingPartition(member)), ":s": str("s#"),
		},
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
	var views []*viewing.View
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			record(ctx, true)
			return nil, fmt.Errorf("query screens: %w", unavailable(err))
		}
		record(ctx, true, one(out.ConsumedCapacity)...)
		for _, item := range out.Items {
			_, v, ok, err := UnmarshalScreen(item)
			if err != nil {
				return nil, err
			}
			if ok {
				views = append(views, v)
			}
		}
		if out.LastEvaluatedKey == nil {
			return views, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Resume implements viewing.Store with one eventually consistent GetItem:
// the resume point is a read model, seconds stale at most.
func (s *Store) Resume(ctx context.Context, member, profile, title string) (*viewing.Resume, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: key(ViewingPartition(member), resumeSK(profile, title)),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		record(ctx, true)
		return nil, fmt.Errorf("read resume point: %w", unavailable(err))
	}
	record(ctx, true, one(out.ConsumedCapacity)...)
	if len(out.Item) == 0 {
		return nil, nil
	}
	return unmarshalResume(out.Item)
}

// AddProgress implements viewing.ProgressStore. Online contributions are
// summed per slot into one conditional UpdateItem, written only if the
// resume point has applied none of them (the last sequence number it
// applied from that slot is below the first) and moving the position only
// if it is no older than the one held. If the point has applied some of
// them, the write fails, the item comes back, and the rest is written
// again; if only the position is newer, the time is written alone. Each
// offline contribution is two conditional updates: its time, once per event
// version; its position, only if newer.
func (s *Store) AddProgress(ctx context.Context, member string, ps []viewing.Progress) ([]viewing.Totals, error) {
	if err := viewing.CheckProgress(ps); err != nil {
		return nil, fmt.Errorf("add progress for %s: %w", kernel.Pseudonym(member), err)
	}
	bySlot := map[int][]viewing.Progress{}
	var slots []int
	for _, p := range ps {
		if p.Seq == "" {
			if err := s.addOffline(ctx, member, p); err != nil {
				return nil, err
			}
			continue
		}
		if _, seen := bySlot[p.Slot]; !seen {
			slots = append(slots, p.Slot)
		}
		bySlot[p.Slot] = append(bySlot[p.Slot], p)
	}
	var closed []viewing.Totals
	for _, slot := range slots {
		// A slot's contributions, view after view.
		run := bySlot[slot]
		for len(run) > 0 {
			n := 1
			for n < len(run) && run[n].View == run[0].View {
				n++
			}
			c, err := s.addOnline(ctx, member, run[:n])
			closed = append(closed, c...)
			if err != nil {
				return closed, err
			}
			run = run[n:]
		}
	}
	return closed, nil
}

// addOnline writes the sum of one view's contributions from its slot, in
// order, each once: to the title's time and position, and to the view's
// running totals. A slot whose totals are another view's (one never seen to
// end) has them closed first, as expired. A stop returns the view's totals
// (left open until CloseView), also when it was applied before.
func (s *Store) addOnline(ctx context.Context, member string, ps []viewing.Progress) ([]viewing.Totals, error) {
	var closed []viewing.Totals
	withPosition := true
	slot, view := ps[0].Slot, ps[0].View
	end := ps[len(ps)-1].End
	var held *viewing.Resume // the item as the last failed write found it
	var floor int64          // the furthest position held, once a write found it greater
	for attempt := 0; len(ps) > 0; attempt++ {
		if attempt > 2*len(ps)+4 {
			return closed, fmt.Errorf("resume point of %s: progress from %s not applied", ps[0].Title, ps[0].Seq)
		}
		first, last := ps[0], ps[len(ps)-1]
		var watched int64
		furthest := floor
		for _, p := range ps {
			watched += p.WatchedMs
			furthest = max(furthest, p.PositionMs)
		}
		sq := "#" + seqAttr(slot)
		c := func(f string) string { return "#" + openAttr(slot, f) }
		values := map[string]types.AttributeValue{
			":it": str(kindResume), ":t": str(last.Title), ":last": str(last.Seq), ":first": str(first.Seq), ":w": num(watched),
			":cv": str(view), ":cd": str(last.Device), ":cs": num(ms(last.Started)), ":cf": num(furthest),
			":cp": num(last.PositionMs), ":ca": num(ms(last.At)),
		}
		update := "SET #it = :it, #t = :t, " + sq + " = :last, " +
			c("v") + " = :cv, " + c("d") + " = :cd, " + c("s") + " = :cs, " + c("f") + " = :cf, " + c("p") + " = :cp, " + c("a") + " = :ca"
		// The furthest position is the greatest reported: the write holds
		// only if it is no less than the one held (after a seek backwards,
		// it is tried again with that one).
		cond := "(attribute_not_exists(" + sq + ") OR " + sq + " < :first) AND (attribute_not_exists(" + c("v") + ") OR " + c("v") + " = :cv)" +
			" AND (attribute_not_exists(" + c("f") + ") OR " + c("v") + " <> :cv OR " + c("f") + " <= :cf)"
		if last.Profile != "" {
			update += ", #pf = :pf"
			values[":pf"] = str(last.Profile)
		}
		if withPosition {
			update += ", #pos = :pos, #at = :at, #dev = :dev, #vid = :vid"
			cond += " AND (attribute_not_exists(#at) OR #at <= :at)"
			values[":pos"], values[":at"], values[":dev"], values[":vid"] = num(last.PositionMs), num(ms(last.At)), str(last.Device), str(last.View)
		}
		update += " ADD #w :w, " + c("w") + " :w"
		k := key(ViewingPartition(member), resumeSK(last.Profile, last.Title))
		old, applied, err := s.updateOld(ctx, k, update, cond, values)
		if err != nil {
			return closed, fmt.Errorf("update resume point of %s: %w", last.Title, err)
		}
		if applied {
			// The view's totals now: those it held, and these.
			tot := viewing.Totals{View: view, Device: first.Device, Started: first.Started}
			if prev, ok := openTotals(old, slot); ok {
				tot = prev
			}
			for _, p := range ps {
				tot.Add(p)
			}
			if end != "" {
				tot.Ended = end
				closed = append(closed, tot)
			}
			return closed, nil
		}
		if held, err = unmarshalResume(old); err != nil {
			return closed, err
		}
		applied0 := held.Seqs[slot]
		i := 0
		for i < len(ps) && ps[i].Seq <= applied0 {
			i++
		}
		if i > 0 { // applied already, in part or whole
			ps = ps[i:]
			continue
		}
		if o, ok := held.Open[slot]; ok && o.View == view && o.FurthestMs > furthest {
			floor = o.FurthestMs // a seek backwards: keep the furthest held
			continue
		}
		if o, ok := held.Open[slot]; ok && o.View != view {
			// The slot's former view of this title was never seen to end.
			t, err := s.CloseView(ctx, member, last.Profile, last.Title, slot, o.View, viewing.Expired)
			if err != nil {
				return closed, err
			}
			if t != nil {
				closed = append(closed, *t)
			}
			continue
		}
		// None applied: the position held is newer. Add the time alone.
		withPosition = false
	}
	// Every contribution was applied before: a stop still gives its totals,
	// while they are open.
	if end != "" && held != nil {
		if o, ok := held.Open[slot]; ok && o.View == view {
			o.Ended = end
			closed = append(closed, o)
		}
	}
	return closed, nil
}

// OpenTotals implements viewing.ProgressStore with one strongly consistent
// GetItem of the resume point.
func (s *Store) OpenTotals(ctx context.Context, member, profile, title string, slot int, view string) (*viewing.Totals, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: key(ViewingPartition(member), resumeSK(profile, title)), ConsistentRead: aws.Bool(true),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		record(ctx, true)
		return nil, fmt.Errorf("read the resume point of %s: %w", title, unavailable(err))
	}
	record(ctx, true, one(out.ConsumedCapacity)...)
	t, ok := openTotals(out.Item, slot)
	if !ok || t.View != view {
		return nil, nil
	}
	return &t, nil
}

// CloseView implements viewing.ProgressStore: one conditional UpdateItem
// that removes the slot's running totals if they are the view's, and
// returns them.
func (s *Store) CloseView(ctx context.Context, member, profile, title string, slot int, view string, reason viewing.EndReason) (*viewing.Totals, error) {
	var remove []string
	for _, f := range openFields {
		remove = append(remove, "#"+openAttr(slot, f))
	}
	cv := "#" + openAttr(slot, "v")
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: key(ViewingPartition(member), resumeSK(profile, title)),
		UpdateExpression: aws.String("REMOVE " + strings.Join(remove, ", ")), ConditionExpression: aws.String(cv + " = :v"),
		ExpressionAttributeNames: names(strings.Join(remove, " ")), ExpressionAttributeValues: map[string]types.AttributeValue{":v": str(view)},
		ReturnValues: types.ReturnValueAllOld, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		record(ctx, false)
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return nil, nil // not open there: closed already, or never opened
		}
		return nil, fmt.Errorf("close view in the resume point of %s: %w", title, unavailable(err))
	}
	record(ctx, false, one(out.ConsumedCapacity)...)
	t, ok := openTotals(out.Attributes, slot)
	if !ok {
		return nil, nil
	}
	t.Ended = reason
	return &t, nil
}

// updateOld is update returning, when it writes, the item as it was.
func (s *Store) updateOld(ctx context.Context, k map[string]types.AttributeValue, update, cond string, values map[string]types.AttributeValue) (old map[string]types.AttributeValue, applied bool, err error) {
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: k,
		UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names(update + " " + cond), ExpressionAttributeValues: values,
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	})
	if err == nil {
		record(ctx, false, one(out.ConsumedCapacity)...)
		return out.Attributes, true, nil
	}
	record(ctx, false)
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return nil, false, unavailable(err)
	}
	return ccf.Item, false, nil
}
func (s *Store) addOffline(ctx context.Context, member string, p viewing.Progress) error {
	base := "SET #it = :it, #t = :t"
	values := func() map[string]types.AttributeValue {
		v := map[string]types.AttributeValue{":it": str(kindResume), ":t": str(p.Title)}
		if p.Profile != "" {
			v[":pf"] = str(p.Profile)
		}
		return v
	}
	if p.Profile != "" {
		base += ", #pf = :pf"
	}
	if p.WatchedMs > 0 {
		v := values()
		v[":v"], v[":w"] = num(p.Version), num(p.WatchedMs)
		if _, err := s.updateResume(ctx, member, p, base+", #ov = :v ADD #w :w", "attribute_not_exists(#ov) OR #ov < :v", v); err != nil {
			return err
		}
	}
	v := values()
	v[":pos"], v[":at"], v[":dev"] = num(p.PositionMs), num(ms(p.At)), str(p.Device)
	_, err := s.updateResume(ctx, member, p, base+", #pos = :pos, #at = :at, #dev = :dev REMOVE #vid", "attribute_not_exists(#at) OR #at < :at", v)
	return err
}

// updateResume makes one conditional update of a resume point: nil if it
// was written, the item as it was if the condition failed.
func (s *Store) updateResume(ctx context.Context, member string, p viewing.Progress, update, cond string, values map[string]types.AttributeValue) (*viewing.Resume, error) {
	old, applied, err := s.update(ctx, key(ViewingPartition(member), resumeSK(p.Profile, p.Title)), update, cond, values)
	if err != nil {
		return nil, fmt.Errorf("update resume point of %s: %w", p.Title, err)
	}
	if applied {
		return nil, nil
	}
	return unmarshalResume(old)
}

// names maps every #name placeholder of the expressions to the attribute
// name it stands for: every attribute is named through a placeholder, so
// none can clash with DynamoDB's reserved words.
func names(expr string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(expr); i++ {
		if expr[i] != '#' {
			continue
		}
		j := i + 1
		for j < len(expr) && (expr[j] >= 'a' && expr[j] <= 'z' || expr[j] >= '0' && expr[j] <= '9') {
			j++
		}
		out[expr[i:j]] = expr[i+1 : j]
		i = j - 1
	}
	return out
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
