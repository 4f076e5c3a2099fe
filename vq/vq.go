// Package vq quantizes vectors to the nearest entry of a codebook: the
// codebook and its binary form, nearest-neighbour search, and the codebook's
// training by k-means.
//
// A decoder only looks entries up (Codebook.Lookup), which copies stored
// floats and so gives the same result on every platform. The search is the
// encoder's and may break near-ties differently across platforms, as any
// float computation may.
package vq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

const (
	// MaxDim bounds a codebook's vector length.
	MaxDim = 256
	// MaxSize bounds a codebook's entry count. An entropy coder's table of
	// the indices (entropy.MaxTableSymbols) holds this many symbols and an
	// escape.
	MaxSize = 1 << 14

	magic      = "LVCQ"
	version    = 1
	headerSize = len(magic) + 1 + 2 + 4 // magic, version, dim, size
)

// A Codebook holds Size vectors of Dim float32 values each.
type Codebook struct {
	dim     int
	entries []float32 // entry i is entries[i*dim : (i+1)*dim]
	// halfNorm[i] is |entry i|²/2: the search minimizes
	// |e|²/2 - e·v, which orders entries as |e - v|² does.
	halfNorm []float32
}

// NewCodebook returns a codebook of the given vector length whose entries
// are consecutive runs of entries. It keeps entries without copying.
func NewCodebook(dim int, entries []float32) (*Codebook, error) {
	if dim < 1 || dim > MaxDim {
		return nil, fmt.Errorf("vq: vector length %d outside 1..%d", dim, MaxDim)
	}
	if len(entries) == 0 || len(entries)%dim != 0 {
		return nil, fmt.Errorf("vq: %d values are not a whole number of %d-vectors", len(entries), dim)
	}
	if size := len(entries) / dim; size > MaxSize {
		return nil, fmt.Errorf("vq: %d entries, more than %d", size, MaxSize)
	}
	for i, v := range entries {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("vq: entry %d holds %v", i/dim, v)
		}
	}
	c := &Codebook{dim: dim, entries: entries, halfNorm: make([]float32, len(entries)/dim)}
	for i := range c.halfNorm {
		var s float64
		for _, v := range c.Entry(i) {
			s += float64(v) * float64(v)
		}
		// Finite entries can still overflow float32 when squared and
		// summed; such a norm would make every distance infinite.
		if s/2 > math.MaxFloat32 {
			return nil, fmt.Errorf("vq: entry %d is too large to search", i)
		}
		c.halfNorm[i] = float32(s / 2)
	}
	return c, nil
}

// Dim returns the length of the codebook's vectors.
func (c *Codebook) Dim() int { return c.dim }

// Size returns the number of entries.
func (c *Codebook) Size() int { return len(c.halfNorm) }

// Entry returns entry i. The slice aliases the codebook.
func (c *Codebook) Entry(i int) []float32 { return c.entries[i*c.dim : (i+1)*c.dim : (i+1)*c.dim] }

// Nearest returns the index of the entry closest to v in Euclidean distance
// (the lowest index among equals) and its squared distance. len(v) must be
// Dim.
func (c *Codebook) Nearest(v []float32) (int, float32) {
	v = v[:c.dim]
	best, bestScore := 0, float32(math.Inf(1))
	rest := c.entries
	for i, h := range c.halfNorm {
		e := rest[:len(v)]
		rest = rest[len(v):]
		score := h
		for j, x := range e {
			score -= x * v[j]
		}
		if score < bestScore {
			best, bestScore = i, score
		}
	}
	return best, sqDist(c.Entry(best), v)
}

// Quantize writes to indices the nearest entry of each of the
// len(indices) consecutive Dim-vectors in vectors, and returns the summed
// squared error.
func (c *Codebook) Quantize(indices []int32, vectors []float32) (float64, error) {
	if len(vectors) != len(indices)*c.dim {
		return 0, fmt.Errorf("vq: %d values for %d vectors of %d", len(vectors), len(indices), c.dim)
	}
	var sse float64
	for k := range indices {
		i, d := c.Nearest(vectors[k*c.dim : (k+1)*c.dim])
		indices[k] = int32(i)
		sse += float64(d)
	}
	return sse, nil
}

// ErrIndex reports an index outside the codebook, as a corrupt stream can
// carry.
var ErrIndex = errors.New("vq: index outside the codebook")

// Lookup writes to dst the entries that indices name, one Dim-vector after
// another. It returns ErrIndex, wrapped with the position, for an index
// outside 0..Size-1.
func (c *Codebook) Lookup(dst []float32, indices []int32) error {
	if len(dst) != len(indices)*c.dim {
		return fmt.Errorf("vq: %d values for %d vectors of %d", len(dst), len(indices), c.dim)
	}
	for k, i := range indices {
		if i < 0 || int(i) >= c.Size() {
			return fmt.Errorf("%w: index %d at vector %d, codebook of %d", ErrIndex, i, k, c.Size())
		}
		copy(dst[k*c.dim:(k+1)*c.dim], c.Entry(int(i)))
	}
	return nil
}

// MarshalBinary encodes the codebook: "LVCQ", a version byte, the vector
// length (uint16) and entry count (uint32), then the entries' float32
// values, all little-endian.
func (c *Codebook) MarshalBinary() ([]byte, error) {
	b := make([]byte, headerSize, headerSize+4*len(c.entries))
	copy(b, magic)
	b[4] = version
	binary.LittleEndian.PutUint16(b[5:], uint16(c.dim))
	binary.LittleEndian.PutUint32(b[7:], uint32(c.Size()))
	for _, v := range c.entries {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b, nil
}

// UnmarshalCodebook decodes what MarshalBinary wrote. It checks the
// declared shape against the length of b before it allocates, and rejects
// trailing bytes and non-finite values.
func UnmarshalCodebook(b []byte) (*Codebook, error) {
	if len(b) < headerSize {
		return nil, fmt.Errorf("vq: codebook of %d bytes is shorter than its %d-byte header", len(b), headerSize)
	}
	if string(b[:4]) != magic {
		return nil, fmt.Errorf("vq: not a codebook (magic %q)", b[:4])
	}
	if b[4] != version {
		return nil, fmt.Errorf("vq: codebook version %d, this reader knows %d", b[4], version)
	}
	dim := int(binary.LittleEndian.Uint16(b[5:]))
	size := int(binary.LittleEndian.Uint32(b[7:]))
	if dim < 1 || dim > MaxDim || size < 1 || size > MaxSize {
		return nil, fmt.Errorf("vq: codebook of %d entries of length %d, outside 1..%d and 1..%d", size, dim, MaxSize, MaxDim)
	}
	if want := headerSize + 4*dim*size; len(b) != want {
		return nil, fmt.Errorf("vq: codebook of %d×%d needs %d bytes, has %d", size, dim, want, len(b))
	}
	entries := make([]float32, dim*size)
	for i := range entries {
		entries[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[headerSize+4*i:]))
	}
	return NewCodebook(dim, entries)
}

func sqDist(a, b []float32) float32 {
	var s float32
	for j, x := range a {
		d := x - b[j]
		s += d * d
	}
	return s
}
