package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPercentilesRoundToTheNearestRankAsKvctlDoes(t *testing.T) {
	micros := []uint32{}
	for v := uint32(1000); v >= 1; v-- { // 1..1000 us, unsorted
		micros = append(micros, v)
	}
	s := summarize(micros)
	// index round(q*(n-1)): 0.5*999+0.5 = 500 -> 501 us; 0.99*999+0.5 = 989 -> 990 us.
	if s.count != 1000 || s.p50Ms != 0.501 || s.p99Ms != 0.990 || s.maxMs != 1.0 || s.meanMs != 0.5005 {
		t.Fatalf("summarize(1..1000 us) = %+v", s)
	}
	if empty := summarize(nil); empty.count != 0 || empty.p99Ms != 0 {
		t.Fatalf("summarize(nil) = %+v", empty)
	}
}

func TestMixRejectsWhatKvctlRejects(t *testing.T) {
	for text, want := range map[string]string{
		"put=50":         "add up to 50, not 100",
		"put=50,get=x":   "the percentage must be 0..100",
		"put":            "is not KIND=PERCENT",
		"del=100":        "unknown op 'del'",
		"put=101,get=-1": "the percentage must be 0..100",
	} {
		if _, err := parseMix(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseMix(%q) = %v, want an error with %q", text, err, want)
		}
	}
	if m, err := parseMix("put=30,get=70"); err != nil || m != (mix{30, 70, 0}) {
		t.Errorf("parseMix(put=30,get=70) = %+v, %v", m, err)
	}
}

// The report kvctl bench -w json printed for this run (cmd/bench.cpp
// format_json); etcd_native must print the same keys in the same order.
const kvctlReport = `{"clients":2,"seconds":1.503,"value_bytes":100,"keys":1000,"mix":{"put":100,"get":0,"append":0},"ok":0,"ops_per_second":0.0,"unknown":2,"rejected":2,"latency":{"count":0,"p50_ms":0.000,"p90_ms":0.000,"p99_ms":0.000,"p999_ms":0.000,"max_ms":0.000,"mean_ms":0.000},"put":{"count":0,"p50_ms":0.000,"p90_ms":0.000,"p99_ms":0.000,"p999_ms":0.000,"max_ms":0.000,"mean_ms":0.000},"get":{"count":0,"p50_ms":0.000,"p90_ms":0.000,"p99_ms":0.000,"p999_ms":0.000,"max_ms":0.000,"mean_ms":0.000},"append":{"count":0,"p50_ms":0.000,"p90_ms":0.000,"p99_ms":0.000,"p999_ms":0.000,"max_ms":0.000,"mean_ms":0.000}}`

// keyPath lists every key of a JSON object, nested ones as a.b, in order.
func keyPath(t *testing.T, text string) []string {
	dec := json.NewDecoder(strings.NewReader(text))
	var path, out []string
	expectKey := []bool{}
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' {
				expectKey = append(expectKey, true)
			} else if v == '}' {
				expectKey = expectKey[:len(expectKey)-1]
				if len(path) > 0 {
					path = path[:len(path)-1]
				}
				if len(expectKey) > 0 {
					expectKey[len(expectKey)-1] = true
				}
			}
		default:
			if len(expectKey) > 0 && expectKey[len(expectKey)-1] {
				key := v.(string)
				out = append(out, strings.Join(append(append([]string{}, path...), key), "."))
				path = append(path, key)
				expectKey[len(expectKey)-1] = false
				continue
			}
			path = path[:len(path)-1]
			expectKey[len(expectKey)-1] = true
		}
	}
}

func TestJSONReportHasKvctlsFieldsInKvctlsOrder(t *testing.T) {
	c := config{clients: 2, conns: 1, valueBytes: 100, keys: 1000, mix: mix{100, 0, 0}}
	r := report{seconds: 1.5, ok: 3, all: summarize([]uint32{1000, 2000, 3000})}
	got := formatJSON(c, r)
	var parsed map[string]interface{}
	if err := json.Unmarshal([]byte(got), &parsed); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	if parsed["ops_per_second"].(float64) != 2.0 || parsed["latency"].(map[string]interface{})["p50_ms"].(float64) != 2.0 {
		t.Errorf("wrong values: %s", got)
	}
	want, have := keyPath(t, kvctlReport), keyPath(t, got)
	if len(want) != 44 || strings.Join(want, " ") != strings.Join(have, " ") {
		t.Errorf("keys differ from kvctl's:\nkvctl %v\nhere  %v", want, have)
	}
}
