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
// It is safe for concurrent use; the zero value holds nothing.
type StateCache struct {
	mu    sync.Mutex
	max   int
	idle  time.Duration
	order *list.List // of *cached, most recently used first
	by    map[string]*list.Element
	hits  int64
	takes int64
}

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
// it was used less than the idle time before now.
func (c *StateCache) take(member string, now time.Time) *State {
	if c == nil || c.max == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.takes++
	e, ok := c.by[member]
	if !ok {
		return nil
	}
	c.order.Remove(e)
	delete(c.by, member)
	v := e.Value.(*cached)
	if c.idle > 0 && now.Sub(v.used) >= c.idle {
		return nil
	}
	c.hits++
	return v.st
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
