package entropy

import (
	"errors"
	"fmt"
	"math"
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
	thresholds []int64 // index i is chosen for scales in [thresholds[i-1], thresholds[i])
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
	return q, nil
}

// Index returns the table for a scale given with ScaleFracBits fraction bits.
func (q *ScaleQuantizer) Index(scale int64) uint16 {
	lo, hi := 0, len(q.thresholds)
	for lo < hi {
		m := (lo + hi) / 2
		if scale >= q.thresholds[m] {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return uint16(lo)
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
