package viewing

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// HistoryEntry is one view in a member's viewing history: what the member
// watched, on which device, when, for how long and how far. The stream
// function writes it when it first sees the view, and its totals when it
// sees the view end; it is kept for the life of the subscription.
type HistoryEntry struct {
	View    string
	Profile string
	Title   string
	Device  string
	Started time.Time
	// LastSeen is the time of the view's last report (its start until the
	// first heartbeat).
	LastSeen time.Time
	// PositionMs is the last position reported, FurthestMs the furthest.
	PositionMs int64
	FurthestMs int64
	// WatchedMs is the time spent playing in this view.
	WatchedMs int64
	// Ended is why the view ended; "" while it is open (playing, or left
	// without a stop and not seen to be over yet: its totals are those of
	// its start until then).
	Ended EndReason
}

// Key is where the entry sorts in its member's history: by start time, then
// view id. Newest first is descending order of keys.
func (e HistoryEntry) Key() string { return HistoryKey(e.Started, e.View) }

// HistoryKey is the sort key of the view started at started: "h#", the start
// in Unix milliseconds (13 digits), "#", the view id.
func HistoryKey(started time.Time, view string) string {
	return fmt.Sprintf("h#%013d#%s", max(started.UnixMilli(), 0), view)
}

// ValidHistoryKey reports whether k is a history key HistoryKey could make.
func ValidHistoryKey(k string) bool {
	rest, ok := strings.CutPrefix(k, "h#")
	if !ok || len(rest) < 15 || rest[13] != '#' {
		return false
	}
	if _, err := strconv.ParseUint(rest[:13], 10, 64); err != nil {
		return false
	}
	_, ok = SlotOf(rest[14:])
	return ok
}

// Totals is what a view has reported so far: the running sums the stream
// function keeps for an open view, and what closes its history entry.
type Totals struct {
	View    string
	Device  string
	Started time.Time
	// Ended is why the view ended, once it has.
	Ended      EndReason
	LastSeen   time.Time
	PositionMs int64
	FurthestMs int64
	WatchedMs  int64
}

// Add adds one report of the view (a heartbeat or stop contribution).
func (t *Totals) Add(p Progress) {
	t.View = p.View
	t.WatchedMs += p.WatchedMs
	if !p.At.Before(t.LastSeen) {
		t.LastSeen, t.PositionMs = p.At, p.PositionMs
	}
	t.FurthestMs = max(t.FurthestMs, p.PositionMs)
}

// Closed is the history entry of a view of title (and profile) that
// ended with totals t.
func Closed(title, profile string, t Totals) HistoryEntry {
	return HistoryEntry{
		View: t.View, Profile: profile, Title: title, Device: t.Device, Started: t.Started,
		LastSeen: t.LastSeen, PositionMs: t.PositionMs, FurthestMs: max(t.FurthestMs, t.PositionMs), WatchedMs: t.WatchedMs, Ended: t.Ended,
	}
}

// EntryOf is the history entry a view opens: its title, device, start and
// the position it starts from.
func EntryOf(v *View) HistoryEntry {
	return HistoryEntry{View: v.ID, Profile: v.Profile, Title: v.Title, Device: v.Device, Started: v.Started, LastSeen: v.Started,
		PositionMs: v.PositionMs, FurthestMs: v.PositionMs}
}

// Completed reports whether a view (or a title's resume point) got into
// the credits: past the policy's completion share of the title's runtime.
// A title of unknown runtime is never completed.
func Completed(furthestMs int64, runtime time.Duration, rules licensing.ViewingRules) bool {
	r := runtime.Milliseconds()
	return r > 0 && float64(furthestMs) >= float64(r)*rules.Completion
}

// Page sizes of history reads.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// ErrBadCursor is a history cursor that was not made for this member (or
// not made by the service at all).
var ErrBadCursor = errors.New("bad cursor")

// cursorVersion is the first byte of a cursor: its format (2: sealed).
const cursorVersion = 2

// CursorKey seals history cursors: an AES-256-GCM key, the same on every
// instance of the service (derived from a secret they share), so that a
// cursor one instance gave is read by any other.
type CursorKey struct{ aead cipher.AEAD }

// NewCursorKey makes the cursor key derived from secret (at least 16
// bytes), under label; the same secret and label give the same key.
func NewCursorKey(secret []byte, label string) (*CursorKey, error) {
	if len(secret) < 16 {
		return nil, errors.New("viewing: a cursor key needs a secret of at least 16 bytes")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(label))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &CursorKey{aead: aead}, nil
}

// EncodeCursor makes the opaque cursor of the history page that follows
// key (the last entry of a page) for member: the key sealed with the
// cursor key, the member bound in as associated data. It reveals nothing:
// neither whose it is nor where it points.
func (c *CursorKey) EncodeCursor(member, key string) string {
	nonce := make([]byte, c.aead.NonceSize(), 1+c.aead.NonceSize()+len(key)+c.aead.Overhead())
	rand.Read(nonce)
	sealed := c.aead.Seal(nonce, nonce, []byte(key), []byte(member))
	return base64.RawURLEncoding.EncodeToString(append([]byte{cursorVersion}, sealed...))
}

// DecodeCursor reads a cursor of member back into the key after which the
// next page starts. Anything else (another member's, another key's, a
// forged or altered one) is ErrBadCursor.
func (c *CursorKey) DecodeCursor(member, cursor string) (string, error) {
	if len(cursor) > 256 {
		return "", ErrBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	n := c.aead.NonceSize()
	if err != nil || len(b) < 1+n+c.aead.Overhead() || b[0] != cursorVersion {
		return "", ErrBadCursor
	}
	plain, err := c.aead.Open(nil, b[1:1+n], b[1+n:], []byte(member))
	if err != nil || !ValidHistoryKey(string(plain)) {
		return "", ErrBadCursor
	}
	return string(plain), nil
}

// localCursorKey seals the cursors of a service given no key (tests and
// local runs): its secret is no secret, so production wiring sets one.
var localCursorKey = func() *CursorKey {
	k, err := NewCursorKey([]byte("dlicense local history cursors"), "local")
	if err != nil {
		panic(err)
	}
	return k
}()

// CodeBadCursor: a history cursor this member was not given (400).
const CodeBadCursor = "INVALID_CURSOR"

// Watched is a history entry as the API shows it.
type Watched struct {
	View       string     `json:"view_id"`
	Title      string     `json:"title_id"`
	Profile    string     `json:"profile_id,omitempty"`
	Device     string     `json:"device_id"`
	Started    time.Time  `json:"started_at"`
	LastSeen   time.Time  `json:"last_seen_at"`
	WatchedMs  int64      `json:"watched_ms"`
	PositionMs int64      `json:"position_ms"`
	FurthestMs int64      `json:"furthest_ms"`
	Completed  bool       `json:"completed"`
	Ended      *EndReason `json:"ended"`
}

// HistoryPage is a page of a member's history, newest first; Next is the
// cursor of the page after it ("" on the last page).
type HistoryPage struct {
	Entries []Watched `json:"entries"`
	Next    string    `json:"next_cursor,omitempty"`
}

// RowTitle is a title of the recently watched row as the API shows it:
// where the latest view of it left off, as of its last report the row was
// told of.
type RowTitle struct {
	Title        string    `json:"title_id"`
	View         string    `json:"view_id"`
	Started      time.Time `json:"started_at"`
	PositionMs   int64     `json:"position_ms"`
	ResumeFromMs int64     `json:"resume_from_ms"`
	Completed    bool      `json:"completed"`
	RuntimeMs    int64     `json:"runtime_ms,omitempty"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func (s *Service) cursorKey() *CursorKey {
	if s.Cursors != nil {
		return s.Cursors
	}
	return localCursorKey
}

func (s *Service) historyStore() (HistoryStore, error) {
	if s.History == nil {
		return nil, kernel.Errorf(kernel.KindUnavailable, "UNAVAILABLE", "viewing history is not configured")
	}
	return s.History, nil
}

// HistoryPage reads a page of a member's history: limit entries (0:
// DefaultPageSize; 1 to MaxPageSize), from the newest, or after the
// cursor a previous page gave.
func (s *Service) HistoryPage(ctx context.Context, member, cursor string, limit int) (HistoryPage, error) {
	h, err := s.historyStore()
	if err != nil {
		return HistoryPage{}, err
	}
	if err := checkIDs("member", member); err != nil {
		return HistoryPage{}, err
	}
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 1 || limit > MaxPageSize {
		return HistoryPage{}, kernel.Invalid("limit", "limit must be from 1 to %d", MaxPageSize)
	}
	after := ""
	if cursor != "" {
		if after, err = s.cursorKey().DecodeCursor(member, cursor); err != nil {
			e := kernel.Errorf(kernel.KindInvalid, CodeBadCursor, "this cursor was not given for this history")
			e.Field = "cursor"
			return HistoryPage{}, e
		}
	}
	entries, more, err := h.History(ctx, member, after, limit)
	if errors.Is(err, ErrErasurePending) {
		return HistoryPage{}, erasureInProgress()
	}
	if err != nil {
		return HistoryPage{}, fmt.Errorf("history of %s: %w", kernel.Pseudonym(member), err)
	}
	policy := s.Policy()
	page := HistoryPage{Entries: make([]Watched, len(entries))}
	for i, e := range entries {
		t, _ := policy.Title(e.Title)
		w := Watched{View: e.View, Title: e.Title, Profile: e.Profile, Device: e.Device, Started: e.Started, LastSeen: e.LastSeen,
			WatchedMs: e.WatchedMs, PositionMs: e.PositionMs, FurthestMs: e.FurthestMs, Completed: Completed(e.FurthestMs, t.Runtime.D(), policy.Viewing)}
		if e.Ended != "" {
			r := e.Ended
			w.Ended = &r
		}
		page.Entries[i] = w
	}
	if more && len(entries) > 0 {
		page.Next = s.cursorKey().EncodeCursor(member, entries[len(entries)-1].Key())
	}
	return page, nil
}
