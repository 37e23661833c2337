// etcd_native: the load of `kvctl bench`, against etcd through its own Go
// client (clientv3 over gRPC), so bench/compare measures etcd the way etcd's
// users and etcd's own tools/benchmark drive it, not through the JSON gateway.
//
//	etcd_native --endpoints 127.0.0.1:2379,... --clients 64 --duration 10s
//	            [--value-size 100] [--keys 1000] [--mix put=50,get=50]
//	            [--timeout 5s] [--conns N] [-w json]
//
// Same workload as cmd/bench.cpp: N goroutines, each with one request
// outstanding, pick put or get by --mix, a key uniformly from bench-0 ..
// bench-(keys-1), and a value of --value-size bytes with one byte changed per
// op. Progress goes to stderr once a second; the report to stdout, as text or
// as the JSON of `kvctl bench -w json`, field for field (report.go).
//
// Gets are clientv3's default Get: linearizable (a ReadIndex through Raft),
// not WithSerializable(). Connections are shared as etcd's tools/benchmark
// shares them (mustCreateClients there): --conns clientv3.Client values, each
// one gRPC connection balanced over all endpoints, and goroutine i uses
// client i % conns. The default, one per 10 goroutines, is the ratio of
// etcd's published benchmark (--conns=100 --clients=1000).
//
// Appends have no etcd equivalent and are refused. Built offline from
// Debian's golang-etcd-server-dev in GOPATH mode (bench/etcd_native/build).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	kindPut = 0
	kindGet = 1
)

// config is what the command line asks for; fixed before the run starts.
type config struct {
	endpoints  []string
	clients    int
	conns      int
	duration   time.Duration
	timeout    time.Duration
	valueBytes int
	keys       uint64
	mix        mix
	json       bool
}

// worker is one goroutine's results; written by that goroutine only, read
// after the run's WaitGroup is done.
type worker struct {
	latencyUs  [3][]uint32 // by kind: put, get, append (always empty here)
	unknown    uint64
	rejected   uint64
	firstError string
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd_native: %v\n", err)
		os.Exit(2)
	}
	clients, err := connect(c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd_native: %v\n", err)
		os.Exit(1)
	}
	r := run(c, clients)
	for _, cli := range clients[:c.conns] {
		cli.Close()
	}
	if c.json {
		fmt.Print(formatJSON(c, r))
	} else {
		fmt.Print(formatText(c, r))
	}
	if r.ok == 0 {
		fmt.Fprintf(os.Stderr, "etcd_native: no operation succeeded; is etcd running at %s?\n",
			strings.Join(c.endpoints, ","))
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("etcd_native", flag.ContinueOnError)
	endpoints := fs.String("endpoints", "", "etcd client addresses HOST:PORT,... (required)")
	clients := fs.Int("clients", 64, "concurrent clients (goroutines, one request outstanding each)")
	conns := fs.Int("conns", 0, "clientv3 clients (gRPC connections) shared by the goroutines; 0: one per 10")
	duration := fs.String("duration", "10s", "how long, e.g. 10s, 1m")
	timeout := fs.String("timeout", "5s", "deadline per request, as kvctl --timeout")
	valueBytes := fs.Int("value-size", 100, "bytes per put value")
	keys := fs.Uint64("keys", 1000, "key space (keys bench-0 .. bench-N-1)")
	mixText := fs.String("mix", "put=100", "op mix in percent, e.g. put=50,get=50")
	format := fs.String("write-out", "text", "text or json")
	fs.StringVar(format, "w", "text", "text or json (short for --write-out)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument '%s'; every option is --name value", fs.Arg(0))
	}
	c := config{clients: *clients, conns: *conns, valueBytes: *valueBytes, keys: *keys}
	for _, ep := range strings.Split(*endpoints, ",") {
		if ep != "" {
			c.endpoints = append(c.endpoints, ep)
		}
	}
	if len(c.endpoints) == 0 {
		return config{}, errors.New("--endpoints is required: HOST:PORT,... of the etcd members")
	}
	if c.clients < 1 || c.clients > 4096 {
		return config{}, fmt.Errorf("--clients %d is not in 1..4096", c.clients)
	}
	if c.conns == 0 {
		c.conns = (c.clients + 9) / 10
	}
	if c.conns < 1 || c.conns > c.clients {
		return config{}, fmt.Errorf("--conns %d is not in 1..--clients (%d)", c.conns, c.clients)
	}
	if c.valueBytes < 0 || c.keys < 1 || c.keys > 1<<40 {
		return config{}, errors.New("--value-size must be >= 0 and --keys in 1..2^40")
	}
	var err error
	if c.duration, err = parseDuration(*duration); err != nil {
		return config{}, fmt.Errorf("--duration: %v", err)
	}
	if c.timeout, err = parseDuration(*timeout); err != nil {
		return config{}, fmt.Errorf("--timeout: %v", err)
	}
	if c.mix, err = parseMix(*mixText); err != nil {
		return config{}, fmt.Errorf("--mix: %v", err)
	}
	if c.mix.append != 0 {
		return config{}, errors.New("--mix: etcd has no append; use put and get only")
	}
	if *format != "text" && *format != "json" {
		return config{}, fmt.Errorf("--write-out '%s' is not text or json", *format)
	}
	c.json = *format == "json"
	return c, nil
}

// parseDuration reads kvctl's durations: a number with s (or none), ms or m.
func parseDuration(text string) (time.Duration, error) {
	number, unit := text, time.Second
	for _, u := range []struct {
		suffix string
		scale  time.Duration
	}{{"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}} {
		if strings.HasSuffix(text, u.suffix) {
			number, unit = strings.TrimSuffix(text, u.suffix), u.scale
			break
		}
	}
	v, err := strconv.ParseFloat(number, 64)
	if err != nil || !(v > 0) || v*float64(unit) > float64(7*24*time.Hour) {
		return 0, fmt.Errorf("'%s' is not a duration like 10s, 500ms or 1m", text)
	}
	return time.Duration(v * float64(unit)), nil
}

// connect makes c.conns clients and hands them out round-robin, as etcd's
// tools/benchmark does; the result has one entry per goroutine.
func connect(c config) ([]*clientv3.Client, error) {
	conns := make([]*clientv3.Client, 0, c.conns)
	for i := 0; i < c.conns; i++ {
		cli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: c.timeout})
		if err != nil {
			for _, done := range conns {
				done.Close()
			}
			return nil, fmt.Errorf("cannot connect to etcd at %s: %v", strings.Join(c.endpoints, ","), err)
		}
		conns = append(conns, cli)
	}
	clients := make([]*clientv3.Client, c.clients)
	for i := range clients {
		clients[i] = conns[i%len(conns)]
	}
	return clients, nil
}

// call runs one op; the error is nil on success.
func call(cli *clientv3.Client, c config, kind int, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var err error
	if kind == kindPut {
		_, err = cli.Put(ctx, key, string(value))
	} else {
		_, err = cli.Get(ctx, key) // linearizable: no clientv3.WithSerializable()
	}
	return err
}

// outcomeUnknown tells whether a failed put may still have been applied
// (kvpaxos's Outcome::unknown) rather than refused.
func outcomeUnknown(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Unavailable, codes.Canceled, codes.Unknown:
		return true
	}
	return false
}

func runWorker(cli *clientv3.Client, c config, index int, end time.Time, done, failed *uint64, w *worker) {
	rng := rand.New(rand.NewSource(int64(index)*7919 + 17))
	value := make([]byte, c.valueBytes)
	for i := range value {
		value[i] = 'x'
	}
	for n := 0; time.Now().Before(end); n++ {
		roll := rng.Intn(100)
		kind := kindGet
		if roll < c.mix.put {
			kind = kindPut
		}
		key := "bench-" + strconv.FormatInt(rng.Int63n(int64(c.keys)), 10)
		if len(value) > 0 {
			value[n%len(value)] = byte('a' + n%26)
		}
		start := time.Now()
		err := call(cli, c, kind, key, value)
		us := time.Since(start).Microseconds()
		if err == nil {
			if us > int64(^uint32(0)) {
				us = int64(^uint32(0))
			}
			w.latencyUs[kind] = append(w.latencyUs[kind], uint32(us))
			atomic.AddUint64(done, 1)
			continue
		}
		if outcomeUnknown(err) {
			w.unknown++
		} else {
			w.rejected++
		}
		if w.firstError == "" {
			w.firstError = err.Error()
		}
		atomic.AddUint64(failed, 1)
	}
}

func run(c config, clients []*clientv3.Client) report {
	var done, failed uint64
	workers := make([]worker, c.clients)
	start := time.Now()
	end := start.Add(c.duration)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			runWorker(clients[i], c, i, end, &done, &failed, &workers[i])
		}(i)
	}
	var last uint64
	for second := 1; time.Now().Before(end); second++ {
		next := start.Add(time.Duration(second) * time.Second)
		if end.Before(next) {
			next = end
		}
		time.Sleep(time.Until(next))
		now := atomic.LoadUint64(&done)
		fmt.Fprintf(os.Stderr, "bench: %ds %d ops/s, %d ok, %d failed\n", second, now-last, now,
			atomic.LoadUint64(&failed))
		last = now
	}
	wg.Wait()
	r := collect(workers, time.Since(start).Seconds())
	for _, w := range workers {
		if w.firstError != "" {
			fmt.Fprintf(os.Stderr, "bench: first error: %s\n", w.firstError)
			break
		}
	}
	return r
}
