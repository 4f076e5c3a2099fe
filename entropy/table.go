// Package entropy turns integer symbols into bits and back: an interleaved
// rANS coder over integer CDF tables, the tables' construction from
// probabilities, and the Gaussian/Laplace conditional and factorized prior
// that a learned codec's entropy model needs.
//
// Everything a decoder derives here is integer arithmetic, so the same inputs
// give the same bytes on every platform.
package entropy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

const (
	MinPrecision = 12
	MaxPrecision = 16
	// MaxTableSymbols bounds one table, escape symbol included.
	MaxTableSymbols = 1 << 15
	// MaxTables bounds a TableSet.
	MaxTables = 1 << 12
	// bucketBits sets the coarse slot index that starts each symbol search.
	bucketBits = 10
)

// A TableSet holds integer CDF tables that share one precision. Table t codes
// the values Offset(t) .. Offset(t)+Len(t)-2 directly; its last symbol is the
// escape that announces a value outside that range.
type TableSet struct {
	precision uint
	cdf       []uint32 // all tables' CDFs, each with Len+1 entries
	start     []int32  // table t's CDF begins at cdf[start[t]]
	length    []int32  // symbols in table t, escape included
	offset    []int32
	bucket    []uint16 // 1<<bucketBits entries per table: first candidate symbol
}

// NumTables returns how many tables the set holds.
func (ts *TableSet) NumTables() int { return len(ts.start) }

// Precision returns the number of bits of every table's total frequency.
func (ts *TableSet) Precision() int { return int(ts.precision) }

// Offset returns the value that table t's first symbol stands for.
func (ts *TableSet) Offset(t int) int32 { return ts.offset[t] }

// Len returns the number of symbols of table t, escape included.
func (ts *TableSet) Len(t int) int { return int(ts.length[t]) }

// Freq returns the frequency of symbol s of table t.
func (ts *TableSet) Freq(t, s int) uint32 {
	c := ts.cdf[ts.start[t]:]
	return c[s+1] - c[s]
}

// NewTableSet builds a set from per-table frequencies and offsets. Each
// frequency list must have at least two entries (a value and the escape),
// all non-zero, summing to 1<<precision.
func NewTableSet(precision int, freqs [][]uint32, offsets []int32) (*TableSet, error) {
	if precision < MinPrecision || precision > MaxPrecision {
		return nil, fmt.Errorf("entropy: precision %d outside %d..%d", precision, MinPrecision, MaxPrecision)
	}
	if len(freqs) != len(offsets) {
		return nil, errors.New("entropy: frequency and offset counts differ")
	}
	if len(freqs) == 0 || len(freqs) > MaxTables {
		return nil, fmt.Errorf("entropy: %d tables, want 1..%d", len(freqs), MaxTables)
	}
	ts := &TableSet{precision: uint(precision)}
	total := uint32(1) << precision
	for t, f := range freqs {
		if len(f) < 2 || len(f) > MaxTableSymbols {
			return nil, fmt.Errorf("entropy: table %d has %d symbols, want 2..%d", t, len(f), MaxTableSymbols)
		}
		if offsets[t] < -MaxMagnitude || int64(offsets[t])+int64(len(f)) > MaxMagnitude {
			return nil, fmt.Errorf("entropy: table %d offset %d out of range", t, offsets[t])
		}
		ts.start = append(ts.start, int32(len(ts.cdf)))
		ts.length = append(ts.length, int32(len(f)))
		ts.offset = append(ts.offset, offsets[t])
		var sum uint32
		ts.cdf = append(ts.cdf, 0)
		for s, v := range f {
			if v == 0 {
				return nil, fmt.Errorf("entropy: table %d symbol %d has zero frequency", t, s)
			}
			if v > total || sum+v > total {
				return nil, fmt.Errorf("entropy: table %d frequencies exceed %d", t, total)
			}
			sum += v
			ts.cdf = append(ts.cdf, sum)
		}
		if sum != total {
			return nil, fmt.Errorf("entropy: table %d frequencies sum to %d, want %d", t, sum, total)
		}
	}
	ts.buildBuckets()
	return ts, nil
}

func (ts *TableSet) buildBuckets() {
	n := len(ts.start)
	ts.bucket = make([]uint16, n<<bucketBits)
	shift := ts.precision - bucketBits
	for t := 0; t < n; t++ {
		c := ts.cdf[ts.start[t] : ts.start[t]+ts.length[t]+1]
		b := ts.bucket[t<<bucketBits : (t+1)<<bucketBits]
		s := 0
		for j := range b {
			lo := uint32(j) << shift
			for c[s+1] <= lo {
				s++
			}
			b[j] = uint16(s)
		}
	}
}

// BuildFrequencies quantizes a probability mass function to integer
// frequencies summing to 1<<precision, every one at least 1. Mass that pmf
// does not cover (1 - sum) is ignored: append it as an escape entry first if
// it must be coded. It returns an error for NaN, negative or all-zero input.
func BuildFrequencies(pmf []float64, precision int) ([]uint32, error) {
	if precision < MinPrecision || precision > MaxPrecision {
		return nil, fmt.Errorf("entropy: precision %d outside %d..%d", precision, MinPrecision, MaxPrecision)
	}
	total := 1 << precision
	n := len(pmf)
	if n < 2 || n > MaxTableSymbols || n > total {
		return nil, fmt.Errorf("entropy: %d symbols do not fit a %d-bit table", n, precision)
	}
	var sum float64
	for i, p := range pmf {
		if !(p >= 0) || math.IsInf(p, 0) {
			return nil, fmt.Errorf("entropy: pmf[%d] = %v", i, p)
		}
		sum += p
	}
	if !(sum > 0) || math.IsInf(sum, 0) {
		return nil, errors.New("entropy: pmf has no mass")
	}
	freq := make([]uint32, n)
	assigned := 0
	for i, p := range pmf {
		f := int(math.Round(p / sum * float64(total)))
		if f < 1 {
			f = 1
		}
		freq[i] = uint32(f)
		assigned += f
	}
	// Move the rounding surplus or deficit one unit at a time to where it
	// costs the fewest bits: d(p*log2 f) per unit is about p/f.
	for assigned != total {
		best, bestCost := -1, math.Inf(1)
		for i, f := range freq {
			p := pmf[i] / sum
			var cost float64
			if assigned > total {
				if f <= 1 {
					continue
				}
				cost = p * math.Log2(float64(f)/float64(f-1))
			} else {
				cost = -p * math.Log2(float64(f+1)/float64(f))
			}
			if cost < bestCost {
				best, bestCost = i, cost
			}
		}
		if assigned > total {
			freq[best]--
			assigned--
		} else {
			freq[best]++
			assigned++
		}
	}
	return freq, nil
}

// MarshalBinary encodes the set as: "LVCT", version 1, precision, table count
// (uint16), then per table its offset (int32), symbol count (uint16) and
// frequencies (uint16 each). All integers are little-endian.
func (ts *TableSet) MarshalBinary() ([]byte, error) {
	out := []byte{'L', 'V', 'C', 'T', 1, byte(ts.precision)}
	out = binary.LittleEndian.AppendUint16(out, uint16(len(ts.start)))
	for t := range ts.start {
		out = binary.LittleEndian.AppendUint32(out, uint32(ts.offset[t]))
		out = binary.LittleEndian.AppendUint16(out, uint16(ts.length[t]))
		for s := 0; s < int(ts.length[t]); s++ {
			f := ts.Freq(t, s)
			if f > math.MaxUint16 {
				return nil, fmt.Errorf("entropy: table %d symbol %d frequency %d does not fit 16 bits", t, s, f)
			}
			out = binary.LittleEndian.AppendUint16(out, uint16(f))
		}
	}
	return out, nil
}

// UnmarshalTableSet decodes and validates a set written by MarshalBinary.
func UnmarshalTableSet(b []byte) (*TableSet, error) {
	if len(b) < 8 || string(b[:4]) != "LVCT" {
		return nil, errors.New("entropy: not a table set (bad magic)")
	}
	if b[4] != 1 {
		return nil, fmt.Errorf("entropy: table set version %d, want 1", b[4])
	}
	precision := int(b[5])
	n := int(binary.LittleEndian.Uint16(b[6:]))
	b = b[8:]
	freqs := make([][]uint32, 0, min(n, len(b)/8))
	offsets := make([]int32, 0, cap(freqs))
	for t := 0; t < n; t++ {
		if len(b) < 6 {
			return nil, fmt.Errorf("entropy: table set truncated in table %d", t)
		}
		off := int32(binary.LittleEndian.Uint32(b))
		k := int(binary.LittleEndian.Uint16(b[4:]))
		b = b[6:]
		if len(b) < 2*k {
			return nil, fmt.Errorf("entropy: table set truncated in table %d", t)
		}
		f := make([]uint32, k)
		for s := range f {
			f[s] = uint32(binary.LittleEndian.Uint16(b[2*s:]))
		}
		b = b[2*k:]
		freqs = append(freqs, f)
		offsets = append(offsets, off)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("entropy: %d bytes after the last table", len(b))
	}
	return NewTableSet(precision, freqs, offsets)
}

// Bits estimates the cost of coding v with table t: -log2 of its
// probability, plus the raw bits of an escape. Encoders use it to choose
// between coding options; it takes no part in decoding.
func (ts *TableSet) Bits(t int, v int32) float64 {
	n := int(ts.length[t])
	s := int(v - ts.offset[t])
	total := float64(uint32(1) << ts.precision)
	if s >= 0 && s < n-1 {
		return -math.Log2(float64(ts.Freq(t, s)) / total)
	}
	return -math.Log2(float64(ts.Freq(t, n-1))/total) + escapeLenBits + float64(bits.Len32(escapeValue(int32(s), int32(n))))
}
