package licensing

import (
	"container/list"
	"sync"
	"time"
)

// StateCache keeps the states of recently used members in memory, at most
// a fixed number, dropping the least recently used: a warm Lambda instance
// decides a member's next command without reading its log, and the
// conditional append tells it when another instance moved the log on. A
// state is taken out for a command and put back after it, so no two
// commands share one.
//
// A state left unused for the cache's idle time is not used again: by then
// the member's other devices have most likely been served by other
// instances, and the stream function has caught its snapshot up, so a fresh
// load (about half a read unit) costs less than a lost conditional write (a
// write unit) followed by a catch-up that reads every event since.
//
// The cache judges itself, because Lambda routes a member's next request
// to any instance: a cached state is worth using only if it is current,
// and a stale one costs more than no cache (a lost conditional write, which
// DynamoDB bills, a catch-up read and a second write). It keeps the last
// JudgeWindow verdicts on its states: while fewer than TrustAt of them say
// current (or it has fewer than MinJudged), it reads first, as without a
// cache, and judges the state it holds against the one it read at no cost;
// once they mostly do (a member's requests meeting the instance that served
// the last), it decides on its states without reading, and judges each by
// the conditional write. So it is never much worse than no cache, whatever
// the routing.
//
// It is safe for concurrent use; the zero value holds nothing.
type StateCache struct {
	mu    sync.Mutex
	max   int
	idle  time.Duration
	order *list.List // of *cached, most recently used first
	by    map[string]*list.Element
	hits  int64
	takes int64
	// The last verdicts (true: current), a ring; judged counts them all.
	verdicts [JudgeWindow]bool
	judged   int64
	current  int
}

// The cache's self-judgement.
const (
	// JudgeWindow is how many of the latest verdicts count.
	JudgeWindow = 64
	// MinJudged is how many verdicts the cache needs before it is trusted.
	MinJudged = 8
	// TrustAt is the share of current states above which the cache is
	// trusted: about where a stale state's lost write, catch-up and second
	// write cost as much as the reads the current ones save, in DynamoDB's
	// prices (a write unit costs five read units).
	TrustAt = 0.9
)

type cached struct {
	st   *State
	used time.Time // by the service's clock
}

// DefaultCacheIdle is how long a cached state may stay unused by default.
const DefaultCacheIdle = time.Minute

// NewStateCache returns a cache of at most max states (0: none), each
// dropped once unused for idle (0: only when the cache is full).
func NewStateCache(max int, idle time.Duration) *StateCache {
	return &StateCache{max: max, idle: idle, order: list.New(), by: map[string]*list.Element{}}
}

// take removes and returns the state of member, if the cache holds it and
// it was used less than the idle time before now, and whether the cache
// is trusted (Trusted): if not, the caller reads the log first and judges
// the state against it.
func (c *StateCache) take(member string, now time.Time) (*State, bool) {
	if c == nil || c.max == 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.takes++
	e, ok := c.by[member]
	if !ok {
		return nil, false
	}
	c.order.Remove(e)
	delete(c.by, member)
	v := e.Value.(*cached)
	if c.idle > 0 && now.Sub(v.used) >= c.idle {
		return nil, false
	}
	c.hits++
	return v.st, c.trusted()
}

// judge records whether a state the cache held turned out current.
func (c *StateCache) judge(current bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.judged % JudgeWindow
	if c.judged >= JudgeWindow && c.verdicts[i] {
		c.current--
	}
	c.verdicts[i] = current
	if current {
		c.current++
	}
	c.judged++
}

// trusted is Trusted with c.mu held.
func (c *StateCache) trusted() bool {
	n := min(c.judged, JudgeWindow)
	return c.judged >= MinJudged && float64(c.current) >= TrustAt*float64(n)
}

// Trusted reports whether the cache's states have lately turned out
// current often enough to decide on them without reading.
func (c *StateCache) Trusted() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trusted()
}

// Verdicts returns how many states the cache has judged, and how many of
// the latest JudgeWindow were current.
func (c *StateCache) Verdicts() (judged int64, current int) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.judged, c.current
}

// put keeps st, used at now, unless the cache holds a newer state of its
// member.
func (c *StateCache) put(st *State, now time.Time) {
	if c == nil || c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.by[st.Member]; ok {
		if e.Value.(*cached).st.Version >= st.Version {
			return
		}
		c.order.Remove(e)
	}
	c.by[st.Member] = c.order.PushFront(&cached{st: st, used: now})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.by, last.Value.(*cached).st.Member)
	}
}

// Stats returns how many states the cache was asked for and how many it had.
func (c *StateCache) Stats() (takes, hits int64) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.takes, c.hits
}

// Len is how many states the cache holds.
func (c *StateCache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
