package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

const (
	kindResume = "resume"
	// resumePrefix starts the sort key of a resume point.
	resumePrefix = "r#"
)

func resumeSK(profile, title string) string {
	if profile == "" {
		profile = "-"
	}
	return resumePrefix + profile + "#" + title
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

// Resume implements viewing.ScreenStore with one eventually consistent GetItem:
// the resume point is a read model, seconds stale at most.
func (s *Views) Resume(ctx context.Context, member, profile, title string) (*viewing.Resume, error) {
	item, err := s.p.get(ctx, key(ViewingPartition(member), resumeSK(profile, title)), false)
	if err != nil {
		return nil, fmt.Errorf("read resume point: %w", err)
	}
	if len(item) == 0 {
		return nil, nil
	}
	return unmarshalResume(item)
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
func (s *Views) AddProgress(ctx context.Context, member string, ps []viewing.Progress) ([]viewing.Totals, error) {
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
func (s *Views) addOnline(ctx context.Context, member string, ps []viewing.Progress) ([]viewing.Totals, error) {
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
		old, applied, err := s.p.update(ctx, k, update, cond, values, true)
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
func (s *Views) OpenTotals(ctx context.Context, member, profile, title string, slot int, view string) (*viewing.Totals, error) {
	item, err := s.p.get(ctx, key(ViewingPartition(member), resumeSK(profile, title)), true)
	if err != nil {
		return nil, fmt.Errorf("read the resume point of %s: %w", title, err)
	}
	t, ok := openTotals(item, slot)
	if !ok || t.View != view {
		return nil, nil
	}
	return &t, nil
}

// CloseView implements viewing.ProgressStore: one conditional UpdateItem
// that removes the slot's running totals if they are the view's, and
// returns them.
func (s *Views) CloseView(ctx context.Context, member, profile, title string, slot int, view string, reason viewing.EndReason) (*viewing.Totals, error) {
	var remove []string
	for _, f := range openFields {
		remove = append(remove, "#"+openAttr(slot, f))
	}
	cv := "#" + openAttr(slot, "v")
	old, applied, err := s.p.update(ctx, key(ViewingPartition(member), resumeSK(profile, title)),
		"REMOVE "+strings.Join(remove, ", "), cv+" = :v", map[string]types.AttributeValue{":v": str(view)}, true)
	if err != nil {
		return nil, fmt.Errorf("close view in the resume point of %s: %w", title, err)
	}
	if !applied {
		return nil, nil // not open there: closed already, or never opened
	}
	t, ok := openTotals(old, slot)
	if !ok {
		return nil, nil
	}
	t.Ended = reason
	return &t, nil
}

func (s *Views) addOffline(ctx context.Context, member string, p viewing.Progress) error {
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
func (s *Views) updateResume(ctx context.Context, member string, p viewing.Progress, update, cond string, values map[string]types.AttributeValue) (*viewing.Resume, error) {
	old, applied, err := s.p.update(ctx, key(ViewingPartition(member), resumeSK(p.Profile, p.Title)), update, cond, values, false)
	if err != nil {
		return nil, fmt.Errorf("update resume point of %s: %w", p.Title, err)
	}
	if applied {
		return nil, nil
	}
	return unmarshalResume(old)
}
