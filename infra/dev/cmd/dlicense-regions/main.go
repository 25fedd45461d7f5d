// Command dlicense-regions runs the service in three regions on this
// machine (infra/dev/regions), over DynamoDB Local at $DYNAMODB_ENDPOINT:
//
//	dlicense-regions serve [-ports 3001,3002,3003] [-control 127.0.0.1:3009]
//	    three regional APIs; POST /cut/<region> and /heal/<region> on the
//	    control address cut a region off and join it again (make run-regions)
//	dlicense-regions drill [-members 20] [-load 60s] [-cut-after 15s] [-cut-for 30s]
//	    the region drill: a mixed load, a region cut off in the middle,
//	    every log and read model checked (make region-drill)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dev/regions"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "drill":
		err = drill(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dlicense-regions:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: dlicense-regions serve [-ports 3001,3002,3003] [-control 127.0.0.1:3009]\n       dlicense-regions drill [-members 20] [-load 60s] [-cut-after 15s] [-cut-for 30s]")
	os.Exit(2)
}

// start starts the cluster on DynamoDB Local, with the checkout's dev keys
// (make token mints tokens every region accepts).
func start(ctx context.Context, prefix string, ports []int) (*regions.Cluster, error) {
	endpoint, ok := dynamotest.EndpointFromEnv()
	if !ok {
		return nil, errors.New("DYNAMODB_ENDPOINT is not set (make run-regions and make region-drill start DynamoDB Local)")
	}
	root, err := local.ModuleRoot()
	if err != nil {
		return nil, err
	}
	keys, err := local.LoadKeys(filepath.Join(root, ".cache", "dev"))
	if err != nil {
		return nil, err
	}
	return regions.Start(ctx, regions.Options{Endpoint: endpoint, Prefix: prefix, Keys: keys, Ports: ports})
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	portList := fs.String("ports", "3001,3002,3003", "loopback ports of the three regional APIs")
	control := fs.String("control", "127.0.0.1:3009", "loopback address of the control (cut and heal)")
	fs.Parse(args)
	var ports []int
	for _, p := range strings.Split(*portList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("-ports: %q", p)
		}
		ports = append(ports, n)
	}
	host, _, err := net.SplitHostPort(*control)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("-control %q: loopback only", *control)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := start(ctx, "", ports)
	if err != nil {
		return err
	}
	defer c.Close()
	mux := http.NewServeMux()
	byName := map[string]*regions.Region{}
	for _, r := range c.Regions {
		byName[r.Name] = r
		fmt.Printf("%s: %s\n", r.Name, r.URL)
	}
	mux.HandleFunc("POST /cut/{region}", func(w http.ResponseWriter, req *http.Request) {
		if r := byName[req.PathValue("region")]; r != nil {
			r.Cut()
			fmt.Fprintf(w, "%s cut off\n", r.Name)
			return
		}
		http.NotFound(w, req)
	})
	mux.HandleFunc("POST /heal/{region}", func(w http.ResponseWriter, req *http.Request) {
		if r := byName[req.PathValue("region")]; r != nil {
			r.Heal()
			fmt.Fprintf(w, "%s joined again\n", r.Name)
			return
		}
		http.NotFound(w, req)
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, req *http.Request) {
		for _, r := range c.Regions {
			fmt.Fprintf(w, "%s %s cut=%v\n", r.Name, r.URL, r.IsCut())
		}
	})
	srv := &http.Server{Addr: *control, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("control: http://%s (POST /cut/<region>, POST /heal/<region>)\ntokens: make token MEMBER=m-1 PLAN=premium (every region accepts them)\n", *control)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func drill(args []string) error {
	fs := flag.NewFlagSet("drill", flag.ExitOnError)
	o := regions.DrillOptions{Cut: 1}
	fs.IntVar(&o.Members, "members", 20, "members in the load")
	fs.DurationVar(&o.Load, "load", 60*time.Second, "how long the load runs")
	fs.DurationVar(&o.CutAfter, "cut-after", 15*time.Second, "when the cut starts, into the load")
	fs.DurationVar(&o.CutFor, "cut-for", 30*time.Second, "how long the region is cut off")
	fs.Parse(args)
	if o.CutAfter+o.CutFor >= o.Load {
		return errors.New("the cut must end before the load does")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := start(ctx, fmt.Sprintf("drill%d-", time.Now().Unix()), nil)
	if err != nil {
		return err
	}
	defer c.Close()
	o.Log = func(format string, a ...any) {
		fmt.Printf("%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	rep, err := regions.Drill(ctx, c, o)
	if err != nil {
		return err
	}
	applied, dropped := c.Replication()
	fmt.Printf("requests %d; viewing requests to the regions not cut off during the cut: %d of %d answered; members over their screens after the heal: %d; resume points the regions disagree on: %d; histories they disagree on: %d; logs with a version gap: %d; counter fields off a recount: %d; replication: %d changes applied, %d older or echoes dropped; stream functions caught up %.2f s after the load\n",
		rep.Requests, rep.ViewingAnswered, rep.ViewingAsked, rep.OverLimitAfter, rep.Diverged, rep.HistoriesDiverged, rep.BadVersions, rep.CountersOff, applied, dropped, rep.Settled.Seconds())
	if len(rep.ViewingFailed) > 0 {
		fmt.Printf("viewing requests of the cut not answered, by status: %v\n", rep.ViewingFailed)
	}
	fmt.Println(rep.Line())
	if !rep.OK() {
		return errors.New("the drill found something lost, broken or diverged")
	}
	return nil
}
