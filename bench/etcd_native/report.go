// The report of `kvctl bench`, reproduced from cmd/bench.cpp: the same
// --mix grammar and errors, the same percentile rule, the same text and the
// same JSON, byte for byte in shape, so bench/compare's `field` reads both.
package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

var kindNames = [3]string{"put", "get", "append"}

// mix is percentages by kind, summing to 100.
type mix struct{ put, get, append int }

type latencySummary struct {
	count                                      int
	p50Ms, p90Ms, p99Ms, p999Ms, maxMs, meanMs float64
}

type report struct {
	seconds           float64
	ok                int
	unknown, rejected uint64
	all               latencySummary
	byKind            [3]latencySummary // put, get, append
}

func (r report) opsPerSecond() float64 {
	if r.seconds <= 0 {
		return 0
	}
	return float64(r.ok) / r.seconds
}

// parseMix reads "put=50,get=50" (missing kinds are 0; the sum must be 100).
func parseMix(text string) (mix, error) {
	var m mix
	for _, part := range strings.Split(text, ",") {
		kind, pctText, found := strings.Cut(part, "=")
		if !found {
			return mix{}, fmt.Errorf("'%s' is not KIND=PERCENT", part)
		}
		pct, err := strconv.Atoi(pctText)
		if err != nil || pct < 0 || pct > 100 {
			return mix{}, fmt.Errorf("'%s': the percentage must be 0..100", part)
		}
		switch kind {
		case "put":
			m.put = pct
		case "get":
			m.get = pct
		case "append":
			m.append = pct
		default:
			return mix{}, fmt.Errorf("unknown op '%s' (put, get or append)", kind)
		}
	}
	if sum := m.put + m.get + m.append; sum != 100 {
		return mix{}, fmt.Errorf("the percentages in '%s' add up to %d, not 100", text, sum)
	}
	return m, nil
}

// summarize sorts micros in place; percentile q is element round(q*(n-1)).
func summarize(micros []uint32) latencySummary {
	s := latencySummary{count: len(micros)}
	if len(micros) == 0 {
		return s
	}
	sort.Slice(micros, func(i, j int) bool { return micros[i] < micros[j] })
	at := func(q float64) float64 {
		i := int(q*float64(len(micros)-1) + 0.5)
		if i > len(micros)-1 {
			i = len(micros) - 1
		}
		return float64(micros[i]) / 1000
	}
	s.p50Ms, s.p90Ms, s.p99Ms, s.p999Ms = at(0.50), at(0.90), at(0.99), at(0.999)
	s.maxMs = float64(micros[len(micros)-1]) / 1000
	var sum float64
	for _, v := range micros {
		sum += float64(v)
	}
	s.meanMs = sum / float64(len(micros)) / 1000
	return s
}

func collect(workers []worker, seconds float64) report {
	r := report{seconds: seconds}
	var all []uint32
	for k := range r.byKind {
		var v []uint32
		for i := range workers {
			v = append(v, workers[i].latencyUs[k]...)
		}
		all = append(all, v...)
		r.byKind[k] = summarize(v)
	}
	for _, w := range workers {
		r.unknown += w.unknown
		r.rejected += w.rejected
	}
	r.ok = len(all)
	r.all = summarize(all)
	return r
}

func formatJSON(c config, r report) string {
	lat := func(s latencySummary) string {
		return fmt.Sprintf(`{"count":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,`+
			`"max_ms":%.3f,"mean_ms":%.3f}`, s.count, s.p50Ms, s.p90Ms, s.p99Ms, s.p999Ms, s.maxMs, s.meanMs)
	}
	return fmt.Sprintf(`{"clients":%d,"seconds":%.3f,"value_bytes":%d,"keys":%d,`+
		`"mix":{"put":%d,"get":%d,"append":%d},"ok":%d,"ops_per_second":%.1f,"unknown":%d,`+
		`"rejected":%d,"latency":%s,"put":%s,"get":%s,"append":%s}`+"\n",
		c.clients, r.seconds, c.valueBytes, c.keys, c.mix.put, c.mix.get, c.mix.append, r.ok,
		r.opsPerSecond(), r.unknown, r.rejected, lat(r.all), lat(r.byKind[0]), lat(r.byKind[1]),
		lat(r.byKind[2]))
}

func formatText(c config, r report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "etcd_native: %d clients over %d connections, %.1f s, %d-byte values, %d keys, "+
		"mix put=%d,get=%d,append=%d\n", c.clients, c.conns, r.seconds, c.valueBytes, c.keys,
		c.mix.put, c.mix.get, c.mix.append)
	fmt.Fprintf(&b, "  ops ok      %d (%.0f ops/s)\n", r.ok, r.opsPerSecond())
	fmt.Fprintf(&b, "  errors      %d unknown outcome, %d rejected\n", r.unknown, r.rejected)
	fmt.Fprintf(&b, "  latency ms  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f\n",
		r.all.p50Ms, r.all.p90Ms, r.all.p99Ms, r.all.p999Ms, r.all.maxMs, r.all.meanMs)
	for k, s := range r.byKind {
		if s.count == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %-10s%d ok, p50 %.2f ms, p99 %.2f ms\n", kindNames[k], s.count, s.p50Ms, s.p99Ms)
	}
	return b.String()
}
