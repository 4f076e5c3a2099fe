package entropy

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
)

// Family is the shape of a conditional distribution.
type Family uint8

const (
	Gaussian Family = iota
	Laplace
)

func (f Family) String() string {
	switch f {
	case Gaussian:
		return "gaussian"
	case Laplace:
		return "laplace"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

// maxScale bounds the scales a table set may be built for.
const maxScale = 1e4

// TailMass is the probability left outside a conditional table's range; it
// is what the escape symbol carries.
const TailMass = 1e-9

// ScaleFracBits is the fixed-point precision of scales handed to ScaleIndex.
const ScaleFracBits = 16

// ConditionalTables builds one table per scale for a zero-mean distribution
// of the given family, whose standard deviation is that scale. Table i codes
// round(y - mean) for latents whose predicted scale maps to i. It is meant
// for model packing: decoders load the resulting tables, so that no decoder
// evaluates transcendental functions whose last bits vary by platform.
func ConditionalTables(f Family, scales []float64, precision int) (*TableSet, error) {
	if len(scales) == 0 || len(scales) > MaxTables {
		return nil, fmt.Errorf("entropy: %d scales, want 1..%d", len(scales), MaxTables)
	}
	freqs := make([][]uint32, len(scales))
	offsets := make([]int32, len(scales))
	for i, s := range scales {
		if !(s > 0) || s > maxScale {
			return nil, fmt.Errorf("entropy: scale %v out of range", s)
		}
		cdf := familyCDF(f, s)
		if cdf == nil {
			return nil, fmt.Errorf("entropy: unknown family %v", f)
		}
		r := int(math.Ceil(tailBound(f, s)))
		pmf := make([]float64, 2*r+2)
		for k := -r; k <= r; k++ {
			pmf[k+r] = cdf(float64(k)+0.5) - cdf(float64(k)-0.5)
		}
		pmf[2*r+1] = 2 * cdf(-float64(r)-0.5)
		fr, err := BuildFrequencies(pmf, precision)
		if err != nil {
			return nil, fmt.Errorf("entropy: scale %v: %w", s, err)
		}
		freqs[i], offsets[i] = fr, int32(-r)
	}
	return NewTableSet(precision, freqs, offsets)
}

func familyCDF(f Family, s float64) func(float64) float64 {
	switch f {
	case Gaussian:
		return func(v float64) float64 { return 0.5 * math.Erfc(-v/(s*math.Sqrt2)) }
	case Laplace:
		b := s / math.Sqrt2
		return func(v float64) float64 {
			if v < 0 {
				return 0.5 * math.Exp(v/b)
			}
			return 1 - 0.5*math.Exp(-v/b)
		}
	}
	return nil
}

// tailBound returns r with P(|v| > r) about TailMass.
func tailBound(f Family, s float64) float64 {
	if f == Laplace {
		return s / math.Sqrt2 * math.Log(1/TailMass)
	}
	// Inverse of erfc at TailMass, found by bisection.
	lo, hi := 0.0, 20.0
	for range 60 {
		mid := (lo + hi) / 2
		if math.Erfc(mid/math.Sqrt2) > TailMass {
			lo = mid
		} else {
			hi = mid
		}
	}
	return s * hi
}

// A ScaleQuantizer maps fixed-point scales to table indices with integer
// comparisons only, so every platform picks the same table.
type ScaleQuantizer struct {
	// thresholds: index i is chosen for scales in [thresholds[i-1],
	// thresholds[i]); count of them, then a math.MaxInt64 that Index may
	// read past the last.
	thresholds []int64
	count      int
	// buckets split the positive scales by octave and eighth of an octave
	// (scaleBucket); for each, the index of its smallest scale, and how many
	// thresholds lie above that and within the bucket. A table spaced as
	// the hyperprior's (13% apart) has at most one in a bucket, so Index
	// takes a lookup and a comparison where a binary search took six
	// mispredicted branches: a decoder maps every latent's scale, some twice.
	buckets []scaleBucketRange
}

type scaleBucketRange struct{ start, extra uint16 }

// scaleBucket is 8·L + the three bits after the leading one of s (fewer,
// shifted up, for L < 4), L being s's bit length; 0 for s ≤ 0.
func scaleBucket(s int64) int {
	if s <= 0 {
		return 0
	}
	l := bits.Len64(uint64(s))
	if l >= 4 {
		return l<<3 | int(s>>(l-4))&7
	}
	return l<<3 | int(s<<(4-l))&7
}

// NewScaleQuantizer takes the ascending scales the tables were built for.
// A scale picks the table whose scale is nearest in the log domain.
func NewScaleQuantizer(scales []float64) (*ScaleQuantizer, error) {
	if len(scales) == 0 || len(scales) > MaxTables {
		return nil, errors.New("entropy: bad scale table length")
	}
	if !(scales[0] > 0) || scales[0] > maxScale {
		return nil, fmt.Errorf("entropy: scale table starts at %v, want (0, %v]", scales[0], maxScale)
	}
	q := &ScaleQuantizer{}
	for i := 1; i < len(scales); i++ {
		if !(scales[i] > scales[i-1]) || scales[i] > maxScale {
			return nil, fmt.Errorf("entropy: scale table not ascending and positive at %d", i)
		}
		// sqrt and products of two floats are correctly rounded in IEEE 754,
		// so this threshold is the same on every platform.
		mid := math.Sqrt(scales[i-1] * scales[i])
		q.thresholds = append(q.thresholds, int64(math.Round(math.Ldexp(mid, ScaleFracBits))))
	}
	// Scales at or above the last threshold all map to the last table, so
	// the buckets need only reach its bucket.
	last := int64(0)
	if q.count = len(q.thresholds); q.count > 0 {
		last = q.thresholds[q.count-1]
	}
	q.buckets = make([]scaleBucketRange, scaleBucket(last)+1)
	for b := range q.buckets {
		if lo, hi := bucketBounds(b); lo <= hi {
			start := q.search(lo)
			q.buckets[b] = scaleBucketRange{uint16(start), uint16(q.search(hi) - start)}
		}
	}
	q.thresholds = append(q.thresholds, math.MaxInt64)
	return q, nil
}

// bucketBounds gives the smallest and largest scale of a bucket; lo > hi
// for one no scale falls in.
func bucketBounds(b int) (lo, hi int64) {
	l, m := b>>3, int64(b&7)
	switch {
	case b == 0:
		return math.MinInt64, 0
	case l >= 4:
		return (8 + m) << (l - 4), (9+m)<<(l-4) - 1
	}
	lo, hi = 1, 0
	for s := int64(7); s >= 1; s-- { // the few scales under 8, one by one
		if scaleBucket(s) == b {
			lo, hi = s, max(hi, s)
		}
	}
	return lo, hi
}

// search counts the thresholds at or below s by binary search.
func (q *ScaleQuantizer) search(s int64) int {
	return sort.Search(q.count, func(i int) bool { return q.thresholds[i] > s })
}

// Index returns the table for a scale given with ScaleFracBits fraction
// bits: the number of thresholds at or below it.
func (q *ScaleQuantizer) Index(scale int64) uint16 {
	b := scaleBucket(scale)
	if b >= len(q.buckets) {
		return uint16(q.count)
	}
	r := q.buckets[b]
	i := int(r.start)
	if r.extra > 1 || b == 0 { // a table denser than the buckets, or s ≤ 0
		for end := i + int(r.extra); i < end && q.thresholds[i] <= scale; i++ {
		}
		return uint16(i)
	}
	// Add extra (0 or 1) when thresholds[i] ≤ scale, from the sign of
	// thresholds[i] − scale − 1 (no overflow: 1 ≤ scale < 2^62) rather than
	// a branch, which would go either way at random.
	return uint16(i + int(r.extra)&int(uint64(q.thresholds[i]-scale-1)>>63))
}

// FactorizedTables builds one table per channel from probabilities of the
// integers offsets[c], offsets[c]+1, ...; the mass they leave uncovered
// (at least TailMass) goes to the escape symbol.
func FactorizedTables(pmfs [][]float64, offsets []int32, precision int) (*TableSet, error) {
	if len(pmfs) != len(offsets) {
		return nil, errors.New("entropy: pmf and offset counts differ")
	}
	freqs := make([][]uint32, len(pmfs))
	for c, p := range pmfs {
		var sum float64
		for _, v := range p {
			sum += v
		}
		withEscape := append(append([]float64(nil), p...), max(1-sum, TailMass))
		f, err := BuildFrequencies(withEscape, precision)
		if err != nil {
			return nil, fmt.Errorf("entropy: channel %d: %w", c, err)
		}
		freqs[c] = f
	}
	return NewTableSet(precision, freqs, offsets)
}
