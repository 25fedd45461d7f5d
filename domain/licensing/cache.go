package licensing

import (
	"container/list"
	"sync"
)

// StateCache keeps the states of recently used members in memory, at most
// a fixed number, dropping the least recently used: a warm Lambda instance
// decides a member's next command without reading its log, and the
// conditional append tells it when another instance moved the log on. A
// state is taken out for a command and put back after it, so no two
// commands share one. It is safe for concurrent use; the zero value holds
// nothing.
type StateCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *State, most recently used first
	by    map[string]*list.Element
	hits  int64
	takes int64
}

// NewStateCache returns a cache of at most max states (0: none).
func NewStateCache(max int) *StateCache {
	return &StateCache{max: max, order: list.New(), by: map[string]*list.Element{}}
}

// take removes and returns the state of member, if the cache holds it.
func (c *StateCache) take(member string) *State {
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
	c.hits++
	c.order.Remove(e)
	delete(c.by, member)
	return e.Value.(*State)
}

// put keeps st, unless the cache holds a newer state of its member.
func (c *StateCache) put(st *State) {
	if c == nil || c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.by[st.Member]; ok {
		if e.Value.(*State).Version >= st.Version {
			return
		}
		c.order.Remove(e)
	}
	c.by[st.Member] = c.order.PushFront(st)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.by, last.Value.(*State).Member)
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
