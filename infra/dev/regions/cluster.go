// Package regions runs the service in three regions on this machine, for
// make run-regions and the region drill: three regional APIs, each with its
// stream functions, over an emulation of the regions layout's tables
// (docs/regions.md) on one DynamoDB Local. It is test tooling; production
// uses DynamoDB's global tables.
//
//   - The log table (multi-Region strong consistency) is one table every
//     region writes through its own endpoint, which a region cut off from
//     the others cannot write or read strongly consistent (proxy).
//   - The viewing table (multi-Region eventual consistency) is a table per
//     region, replicated last writer wins by a replicator that holds what a
//     cut region writes or would receive until it is healed (replicator).
//   - Each region's read models are in a table of its own.
package regions

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlicense/dlicense/infra/changestream"
	"github.com/dlicense/dlicense/infra/dev/devidp"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/ops/eventsource"
	"github.com/dlicense/dlicense/infra/setup"
)

// Names are the regions' names, in order.
var Names = []string{"region-a", "region-b", "region-c"}

// Options configure a cluster.
type Options struct {
	// Endpoint is the DynamoDB Local every table is on.
	Endpoint string
	// Prefix starts the tables' names (one cluster's apart from another's
	// on the same DynamoDB Local).
	Prefix string
	// Keys are the dev keys: the identity provider's and the licence
	// signing key, the same in every region.
	Keys local.Keys
	// Ports are the loopback ports of the regional APIs (0: free ones).
	Ports []int
	// Setup adjusts each region's configuration (deadlines, clock…).
	Setup func(region int, c *setup.Config)
}

// Cluster is the service in three regions.
type Cluster struct {
	Regions []*Region
	Issuer  *devidp.DevIssuer
	rep     *replicator
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// Region is one region: its API and what it runs on.
type Region struct {
	Name string
	// URL is the regional API (behind the local JWT gateway).
	URL string
	App *local.App
	// Tables are the region's tables.
	Tables dynamo.Tables

	index   int
	proxy   *proxy
	pollers []*eventsource.Poller
	server  *http.Server
	cluster *Cluster
}

// Start starts the three regions, creating their tables, until ctx ends
// or Close.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	root, err := local.ModuleRoot()
	if err != nil {
		return nil, err
	}
	db, err := dynamo.NewClient(ctx, dynamo.Config{Endpoint: o.Endpoint})
	if err != nil {
		return nil, err
	}
	logTable := o.Prefix + "log"
	viewing := make([]string, len(Names))
	tables := []string{logTable}
	for i, n := range Names {
		viewing[i] = o.Prefix + "viewing-" + n
		tables = append(tables, viewing[i], o.Prefix+"regional-"+n)
	}
	for _, name := range tables {
		in, err := dynamotest.TableFromTemplate(filepath.Join(root, "template.yaml"), dynamotest.TableLogicalID, name)
		if err != nil {
			return nil, err
		}
		if err := dynamotest.CreateTable(ctx, db, in); err != nil {
			return nil, err
		}
	}
	streams, err := changestream.NewClient(ctx, dynamo.Config{Endpoint: o.Endpoint})
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	c := &Cluster{Issuer: devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, o.Keys.Issuer), rep: newReplicator(db, streams, viewing), stop: stop}
	var clock atomic.Int64
	stamp := func(region int) func() int64 {
		return func() int64 {
			// Unique, growing write times: Unix ns, the last digit the region.
			for {
				old := clock.Load()
				next := max(old/10*10+10, time.Now().UnixNano()/10*10) + int64(region)
				if clock.CompareAndSwap(old, next) {
					return next
				}
			}
		}
	}
	for i, name := range Names {
		r := &Region{Name: name, index: i, cluster: c, Tables: dynamo.Tables{Log: logTable, Viewing: viewing[i], Regional: o.Prefix + "regional-" + name}}
		if r.proxy, err = newProxy(i, o.Endpoint, logTable, viewing[i], stamp(i)); err != nil {
			c.Close()
			return nil, err
		}
		if err := c.startRegion(ctx, runCtx, r, o); err != nil {
			c.Close()
			return nil, err
		}
		c.Regions = append(c.Regions, r)
	}
	c.wg.Go(func() {
		if err := c.rep.run(runCtx); err != nil && runCtx.Err() == nil {
			fmt.Println("regions: replicator:", err)
		}
	})
	return c, nil
}

func (c *Cluster) startRegion(ctx, runCtx context.Context, r *Region, o Options) error {
	// The region's DynamoDB endpoint.
	ddb, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	dsrv := &http.Server{Handler: r.proxy, ReadHeaderTimeout: 10 * time.Second}
	c.wg.Go(func() { dsrv.Serve(ddb) })
	context.AfterFunc(runCtx, func() { dsrv.Close() })

	cfg := setup.Config{SigningKeys: o.Keys.Signing.Encode(), Issuer: "dlicense-regions", PlanClaim: "plan", QuietMetrics: true,
		Dynamo: dynamo.Config{Table: r.Tables.Log, ViewingTable: r.Tables.Viewing, RegionalTable: r.Tables.Regional, Endpoint: "http://" + ddb.Addr().String()}}
	if r.index > 0 {
		cfg.SnapshotEvery = -1 // the first region's stream function writes them
	}
	if o.Setup != nil {
		o.Setup(r.index, &cfg)
	}
	if r.App, err = local.Build(ctx, "dynamo", cfg); err != nil {
		return err
	}
	if r.pollers, err = r.App.StreamPollers(ctx); err != nil {
		return err
	}
	for _, p := range r.pollers {
		c.wg.Go(func() {
			if err := p.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				fmt.Println("regions:", r.Name, "stream poller:", err)
			}
		})
	}
	port := 0
	if r.index < len(o.Ports) {
		port = o.Ports[r.index]
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	r.URL = "http://" + ln.Addr().String()
	r.server = &http.Server{Handler: local.NewGateway(r.App.Handler(), c.Issuer, httpapi.PublicRoutes()), ReadHeaderTimeout: 10 * time.Second}
	c.wg.Go(func() { r.server.Serve(ln) })
	context.AfterFunc(runCtx, func() { r.server.Close() })
	return nil
}

// Cut cuts the region off from the others: its writes and strong reads of
// the log fail, its viewing replica neither sends nor receives changes.
func (r *Region) Cut() {
	r.proxy.cut.Store(true)
	r.cluster.rep.setCut(r.index, true)
}

// Heal joins the region to the others again: what its replica and theirs
// held for each other is applied.
func (r *Region) Heal() {
	r.proxy.cut.Store(false)
	r.cluster.rep.setCut(r.index, false)
}

// IsCut reports whether the region is cut off.
func (r *Region) IsCut() bool { return r.proxy.cut.Load() }

// CatchUp waits until the region's stream functions have handled every
// record of its streams so far.
func (r *Region) CatchUp(ctx context.Context) error {
	for _, p := range r.pollers {
		if err := p.CatchUp(ctx); err != nil {
			return fmt.Errorf("%s: %w", r.Name, err)
		}
	}
	return nil
}

// Settle waits until replication has applied every change and the
// replicas' streams have been quiet for a moment, then until every
// region's stream functions have caught up: the regions have converged.
func (c *Cluster) Settle(ctx context.Context) error {
	for !c.rep.drained(300 * time.Millisecond) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, r := range c.Regions {
		if err := r.CatchUp(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Rejoined waits until what the region and the others held for each
// other until healed (a time) has been applied to their replicas.
func (r *Region) Rejoined(ctx context.Context, healed time.Time) error {
	for r.cluster.rep.backlog(r.index, healed) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Replication says what the replicator did: changes applied, and dropped
// (older than the item they would replace, or echoes).
func (c *Cluster) Replication() (applied, dropped int) {
	c.rep.mu.Lock()
	defer c.rep.mu.Unlock()
	return c.rep.applied, c.rep.dropped
}

// SetDelay holds every replicated change that long before applying it.
func (c *Cluster) SetDelay(d time.Duration) {
	c.rep.mu.Lock()
	c.rep.Delay = d
	c.rep.mu.Unlock()
}

// Close stops the regions.
func (c *Cluster) Close() {
	c.stop()
	c.wg.Wait()
}
