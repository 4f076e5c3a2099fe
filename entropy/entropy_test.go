package entropy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// hyperpriorScales is the scale table of the shipped models: 64 log-spaced
// scales from 0.11 to 256.
func hyperpriorScales() []float64 {
	s := make([]float64, 64)
	for i := range s {
		s[i] = math.Exp(math.Log(0.11) + (math.Log(256)-math.Log(0.11))*float64(i)/63)
	}
	return s
}

func gaussianSet(t testing.TB, precision int) *TableSet {
	ts, err := ConditionalTables(Gaussian, hyperpriorScales(), precision)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// sampleWorkload draws n values, each from the distribution of a table chosen
// uniformly, so scales spread over the whole table as in a hyperprior. The
// drawn value follows the table's own frequencies.
func sampleWorkload(ts *TableSet, n int, seed uint64) ([]int32, []uint16) {
	rng := rand.New(rand.NewPCG(seed, 7))
	vals := make([]int32, n)
	idx := make([]uint16, n)
	total := uint32(1) << ts.precision
	for i := range vals {
		t := rng.IntN(ts.NumTables())
		u := rng.Uint32N(total)
		c := ts.cdf[ts.start[t] : ts.start[t]+ts.length[t]+1]
		s := 0
		for c[s+1] <= u {
			s++
		}
		if s == int(ts.length[t])-1 { // the escape: pick a far value
			s = int(ts.length[t]) + rng.IntN(1000)
		}
		vals[i] = int32(s) + ts.offset[t]
		idx[i] = uint16(t)
	}
	return vals, idx
}

func roundTrip(t *testing.T, ts *TableSet, vals []int32, idx []uint16) []byte {
	t.Helper()
	var e Encoder
	buf, err := e.Encode(nil, vals, idx, ts)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]int32, len(vals))
	if err := Decode(buf, got, idx, ts); err != nil {
		t.Fatalf("decode: %v", err)
	}
	for i := range vals {
		if got[i] != vals[i] {
			t.Fatalf("value %d: got %d want %d", i, got[i], vals[i])
		}
	}
	return buf
}

func TestRoundTripAllPrecisions(t *testing.T) {
	for p := MinPrecision; p <= MaxPrecision; p++ {
		ts := gaussianSet(t, p)
		for _, n := range []int{0, 1, 3, 4, 5, 1000, 50000} {
			vals, idx := sampleWorkload(ts, n, uint64(p*100+n))
			roundTrip(t, ts, vals, idx)
		}
	}
}

// TestDecoderInParts: a stream decoded in parts, each with its own table
// set, gives what one Decode gives, wherever the parts split (the state a
// value uses follows its position in the whole stream), and Close catches a
// stream read short.
func TestDecoderInParts(t *testing.T) {
	ts := gaussianSet(t, 14)
	vals, idx := sampleWorkload(ts, 1001, 7)
	var e Encoder
	buf, err := e.Encode(nil, vals, idx, ts)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{0, 1, 2, 3, 5, 500, 1000, 1001} {
		d, err := NewDecoder(buf)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]int32, len(vals))
		if err := d.Decode(got[:cut], idx[:cut], ts); err != nil {
			t.Fatalf("cut %d, first part: %v", cut, err)
		}
		if cut < len(vals) {
			if err := d.Close(); err == nil {
				t.Fatalf("cut %d: Close after a partial read says the stream ended", cut)
			}
		}
		if err := d.Decode(got[cut:], idx[cut:], ts); err != nil {
			t.Fatalf("cut %d, second part: %v", cut, err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		for i := range vals {
			if got[i] != vals[i] {
				t.Fatalf("cut %d, value %d: got %d want %d", cut, i, got[i], vals[i])
			}
		}
	}
}

// TestEncodeParts: parts with their own table sets, of any lengths, make
// one stream that a Decoder reads part by part; one part is what Encode
// writes, and a warm Encoder writing into room it has does not allocate.
func TestEncodeParts(t *testing.T) {
	gauss, coarse := gaussianSet(t, 16), gaussianSet(t, 12)
	for _, lens := range [][]int{{0, 0}, {1, 0, 3}, {5, 7, 1}, {192, 240, 3001}} {
		var parts []Part
		for j, n := range lens {
			ts := gauss
			if j%2 == 1 {
				ts = coarse
			}
			vals, idx := sampleWorkload(ts, n, uint64(10*j+n))
			parts = append(parts, Part{vals, idx, ts})
		}
		var e Encoder
		buf, err := e.EncodeParts(nil, parts...)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDecoder(buf)
		if err != nil {
			t.Fatal(err)
		}
		for j, p := range parts {
			got := make([]int32, len(p.Values))
			if err := d.Decode(got, p.Tables, p.Set); err != nil {
				t.Fatalf("parts %v, part %d: %v", lens, j, err)
			}
			for i := range got {
				if got[i] != p.Values[i] {
					t.Fatalf("parts %v, part %d, value %d: got %d want %d", lens, j, i, got[i], p.Values[i])
				}
			}
		}
		if err := d.Close(); err != nil {
			t.Fatalf("parts %v: %v", lens, err)
		}
	}
	vals, idx := sampleWorkload(gauss, 1000, 3)
	var e Encoder
	one, _ := e.Encode(nil, vals, idx, gauss)
	parts, _ := e.EncodeParts(nil, Part{vals, idx, gauss})
	if !bytes.Equal(one, parts) {
		t.Error("one part and Encode differ")
	}
	dst := make([]byte, 0, 4*len(one))
	if n := testing.AllocsPerRun(10, func() { e.Encode(dst, vals, idx, gauss) }); n != 0 {
		t.Errorf("a warm Encode allocates %v times", n)
	}
}

func TestEscapeExtremes(t *testing.T) {
	ts := gaussianSet(t, 16)
	vals := []int32{MaxMagnitude, -MaxMagnitude, 0, 1, -1, 37, -38, MaxMagnitude - 1, 12345, -99999}
	idx := make([]uint16, len(vals))
	for i := range idx {
		idx[i] = uint16(i * 7 % ts.NumTables())
	}
	roundTrip(t, ts, vals, idx)

	var e Encoder
	if _, err := e.Encode(nil, []int32{MaxMagnitude + 1}, []uint16{0}, ts); err == nil {
		t.Error("value beyond MaxMagnitude accepted")
	}
	if _, err := e.Encode(nil, []int32{0}, []uint16{64}, ts); err == nil {
		t.Error("table index beyond the set accepted")
	}
}

func TestBuildFrequenciesProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 2000; trial++ {
		n := 2 + rng.IntN(300)
		prec := MinPrecision + rng.IntN(MaxPrecision-MinPrecision+1)
		pmf := make([]float64, n)
		switch trial % 4 {
		case 0: // uniform random
			for i := range pmf {
				pmf[i] = rng.Float64()
			}
		case 1: // nearly degenerate: one symbol holds almost everything
			for i := range pmf {
				pmf[i] = 1e-300 * rng.Float64()
			}
			pmf[rng.IntN(n)] = 1
		case 2: // exact zeros and a heavy tail
			for i := range pmf {
				if rng.IntN(3) == 0 {
					pmf[i] = math.Pow(rng.Float64(), 8)
				}
			}
			pmf[0] += 1e-3
		case 3: // geometric
			for i := range pmf {
				pmf[i] = math.Pow(0.5, float64(i))
			}
		}
		f, err := BuildFrequencies(pmf, prec)
		if err != nil {
			t.Fatal(err)
		}
		var sum uint32
		for i, v := range f {
			if v == 0 {
				t.Fatalf("trial %d: symbol %d has zero frequency", trial, i)
			}
			sum += v
		}
		if sum != 1<<prec {
			t.Fatalf("trial %d: sum %d want %d", trial, sum, 1<<prec)
		}
		if _, err := NewTableSet(prec, [][]uint32{f}, []int32{0}); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
	}
	for _, bad := range [][]float64{{0, 0}, {math.NaN(), 1}, {-1, 2}, {1}, {math.Inf(1), 1}} {
		if _, err := BuildFrequencies(bad, 16); err == nil {
			t.Errorf("pmf %v accepted", bad)
		}
	}
	if _, err := BuildFrequencies(make([]float64, 5000), 12); err == nil {
		t.Error("5000 symbols accepted in a 12-bit table")
	}
}

// idealBits is -sum log2 p of the values under the tables' own frequencies,
// escapes counted at their raw cost.
func idealBits(ts *TableSet, vals []int32, idx []uint16) float64 {
	var bitsSum float64
	total := float64(uint32(1) << ts.precision)
	for i, v := range vals {
		t := int(idx[i])
		s := int(v - ts.offset[t])
		if s < 0 || s >= ts.Len(t)-1 {
			s = ts.Len(t) - 1
		}
		bitsSum -= math.Log2(float64(ts.Freq(t, s)) / total)
	}
	return bitsSum
}

func TestOverheadBelowIdeal(t *testing.T) {
	for _, p := range []int{12, 14, 16} {
		ts := gaussianSet(t, p)
		vals, idx := sampleWorkload(ts, 100000, 3)
		// Escapes carry raw bits on top of the ideal; leave them out here.
		for i := range vals {
			tt := int(idx[i])
			if s := int(vals[i] - ts.offset[tt]); s >= ts.Len(tt)-1 || s < 0 {
				vals[i] = 0
			}
		}
		buf := roundTrip(t, ts, vals, idx)
		ideal := idealBits(ts, vals, idx)
		over := float64(8*len(buf))/ideal - 1
		t.Logf("precision %d: %d bytes, ideal %.0f bytes, overhead %.4f%%", p, len(buf), ideal/8, 100*over)
		if over > 0.003 {
			t.Errorf("precision %d: overhead %.3f%% above 0.3%%", p, 100*over)
		}
	}
}

func TestCorruptInputNeverPanics(t *testing.T) {
	ts := gaussianSet(t, 16)
	vals, idx := sampleWorkload(ts, 3000, 5)
	var e Encoder
	buf, err := e.Encode(nil, vals, idx, ts)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int32, len(vals))
	for cut := 0; cut < len(buf); cut++ {
		if err := Decode(buf[:cut], out, idx, ts); err == nil {
			t.Fatalf("truncation at %d of %d bytes decoded without error", cut, len(buf))
		}
	}
	if err := Decode(append(buf[:len(buf):len(buf)], 0, 0), out, idx, ts); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing bytes: got %v, want ErrCorrupt", err)
	}
	caught := 0
	for bit := 0; bit < 8*len(buf); bit += 7 {
		c := append([]byte(nil), buf...)
		c[bit/8] ^= 1 << (bit % 8)
		if Decode(c, out, idx, ts) != nil {
			caught++
		}
	}
	// A flip in the final states' words, or one that turns the stream into
	// another valid one, goes unseen; most must not.
	flips := (8*len(buf) + 6) / 7
	t.Logf("%d of %d bit flips detected", caught, flips)
	if caught < flips*9/10 {
		t.Errorf("only %d of %d bit flips detected", caught, flips)
	}
}

func TestScaleQuantizerPicksNearestInLog(t *testing.T) {
	scales := hyperpriorScales()
	q, err := NewScaleQuantizer(scales)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range scales {
		for _, f := range []float64{0.97, 1, 1.03} {
			got := q.Index(int64(s * f * (1 << ScaleFracBits)))
			if int(got) != i {
				t.Errorf("scale %v*%v: index %d want %d", s, f, got, i)
			}
		}
	}
	if q.Index(0) != 0 || q.Index(-5) != 0 || int(q.Index(math.MaxInt64)) != len(scales)-1 {
		t.Error("scales outside the table are not clamped to its ends")
	}
}

// TestScaleQuantizerCountsThresholds: Index is the number of thresholds at or
// below the scale, as a binary search counts them, for tables from one
// scale to more than a bucket holds, from tiny scales (thresholds under 8,
// or 0) to the largest, at each threshold, beside it and at the extremes.
func TestScaleQuantizerCountsThresholds(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for n := 1; n <= 300; n++ {
		scales := make([]float64, n)
		s := math.Ldexp(0.05+rng.Float64(), -rng.IntN(24))
		ratio := 1.001 + rng.Float64()*0.3
		for i := range scales {
			scales[i] = min(s, maxScale*float64(i+1)/float64(n))
			s *= ratio
		}
		for i := 1; i < n; i++ {
			if scales[i] <= scales[i-1] {
				scales = scales[:i]
				break
			}
		}
		q, err := NewScaleQuantizer(scales)
		if err != nil {
			t.Fatal(err)
		}
		probes := []int64{math.MinInt64, -1, 0, 1, 2, 3, 5, 7, 8, 9, math.MaxInt64}
		for _, th := range q.thresholds[:q.count] {
			probes = append(probes, th-1, th, th+1, th+rng.Int64N(1+th/4))
		}
		for _, v := range probes {
			want, _ := slices.BinarySearch(q.thresholds[:q.count], v)
			for want < q.count && q.thresholds[want] <= v {
				want++
			}
			if got := q.Index(v); int(got) != want {
				t.Fatalf("%d scales from %g, scale %d: index %d, want %d", len(scales), scales[0], v, got, want)
			}
		}
	}
}

func TestTableSetMarshalRoundTrip(t *testing.T) {
	ts := gaussianSet(t, 14)
	b, err := ts.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	ts2, err := UnmarshalTableSet(b)
	if err != nil {
		t.Fatal(err)
	}
	vals, idx := sampleWorkload(ts, 5000, 9)
	var e Encoder
	b1, _ := e.Encode(nil, vals, idx, ts)
	b2, _ := e.Encode(nil, vals, idx, ts2)
	if string(b1) != string(b2) {
		t.Fatal("reloaded tables code differently")
	}
	for cut := 0; cut < len(b); cut += 97 {
		if _, err := UnmarshalTableSet(b[:cut]); err == nil {
			t.Fatalf("table set truncated at %d accepted", cut)
		}
	}
}

func TestFactorizedTables(t *testing.T) {
	pmfs := [][]float64{{0.1, 0.2, 0.4, 0.2, 0.1}, {1e-12, 0.5, 0.5}}
	ts, err := FactorizedTables(pmfs, []int32{-2, 5}, 16)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ts, []int32{0, 5, -2, 7, 2, 100, -7, 4}, []uint16{0, 1, 0, 1, 0, 1, 0, 0})
}

var update = flag.Bool("update", false, "rewrite the table fixtures in testdata")

// goldenStreamSHA256 is the hash of what crossPlatformWorkload encodes. The
// same test runs on the host and under js/wasm (make test-wasm), so both must
// produce these bytes. The tables come from fixtures, as a decoder's come
// from the model file: building them calls math.Exp and math.Erfc, whose
// last bits differ between amd64 assembly and pure Go (measured: the Laplace
// tables differ between amd64 and wasm).
const goldenStreamSHA256 = "f5c63bcbee602d40d28e7e6621a33e9eb861777c258fea9aef3030cd3798ef33"

func fixtureTables(t testing.TB, name string, f Family, precision int) *TableSet {
	path := filepath.Join("testdata", name)
	if *update {
		ts, err := ConditionalTables(f, hyperpriorScales(), precision)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := ts.MarshalBinary()
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := UnmarshalTableSet(b)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func crossPlatformWorkload(t testing.TB) []byte {
	ts := fixtureTables(t, "gaussian16.lvct", Gaussian, 16)
	lap := fixtureTables(t, "laplace13.lvct", Laplace, 13)
	q, err := NewScaleQuantizer(hyperpriorScales())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(42, 42))
	n := 20000
	vals := make([]int32, n)
	idx := make([]uint16, n)
	for i := range vals {
		scaleQ := int64(rng.Uint64N(300 << ScaleFracBits))
		idx[i] = q.Index(scaleQ)
		k := 1 + 2*(scaleQ>>ScaleFracBits) // integer draws: the input itself must not vary by platform
		vals[i] = int32(rng.Int64N(2*k+1) - k)
	}
	var e Encoder
	out, err := e.Encode(nil, vals, idx, ts)
	if err != nil {
		t.Fatal(err)
	}
	out, err = e.Encode(out, vals, idx, lap)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterministicBytes(t *testing.T) {
	sum := sha256.Sum256(crossPlatformWorkload(t))
	got := hex.EncodeToString(sum[:])
	if got != goldenStreamSHA256 {
		t.Fatalf("stream hash %s, want %s", got, goldenStreamSHA256)
	}
}

// TestEscapeLengthMustBeExact: an escape whose length field is longer than
// its number needs decodes to a value Encode writes in fewer bits, so the
// decoder refuses it; otherwise one value would have two streams.
func TestEscapeLengthMustBeExact(t *testing.T) {
	ts := fixtureTables(t, "gaussian16.lvct", Gaussian, 16)
	const table = 10
	below := ts.offset[table] - 1 // the first value under the table: e = 0
	stream := func(nb, ev uint32) []byte {
		var e Encoder
		x := [numStates]uint32{ransLow, ransLow, ransLow, ransLow}
		c := ts.cdf[ts.start[table]:]
		esc := ts.length[table] - 1
		if nb > 16 { // as Encode writes a long escape: low bits, then the high 16
			lo := uint(nb - 16)
			e.put(&x[0], ev&(1<<lo-1), 1, lo)
			e.put(&x[0], ev>>lo, 1, 16)
		} else if nb > 0 {
			e.put(&x[0], ev, 1, uint(nb))
		}
		e.put(&x[0], nb, 1, escapeLenBits)
		e.put(&x[0], c[esc], c[esc+1]-c[esc], ts.precision)
		return e.flush(nil, &x)
	}
	var e Encoder
	want, err := e.Encode(nil, []int32{below}, []uint16{table}, ts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stream(0, 0), want) {
		t.Fatal("the test's stream builder does not write what Encode does")
	}
	got := make([]int32, 1)
	if err := Decode(want, got, []uint16{table}, ts); err != nil || got[0] != below {
		t.Fatalf("canonical escape: %d, %v", got[0], err)
	}
	if got[0] = 0; Decode(stream(18, 1<<17), got, []uint16{table}, ts) != nil || got[0] != below-1<<16 {
		t.Fatalf("canonical 18-bit escape: %d", got[0])
	}
	for _, nb := range []uint32{1, 5, 17} {
		if err := Decode(stream(nb, 0), got, []uint16{table}, ts); !errors.Is(err, ErrCorrupt) {
			t.Errorf("e = 0 written in %d bits: got %v, want ErrCorrupt", nb, err)
		}
	}
}

func TestScaleQuantizerChecksEveryScale(t *testing.T) {
	for _, scales := range [][]float64{{math.NaN()}, {-1}, {0}, {1e9}, {0, 1}, {math.NaN(), 1}, {1, 1}, {2, 1}} {
		if _, err := NewScaleQuantizer(scales); err == nil {
			t.Errorf("scales %v accepted", scales)
		}
	}
	if _, err := NewScaleQuantizer([]float64{0.5}); err != nil {
		t.Error(err)
	}
}
