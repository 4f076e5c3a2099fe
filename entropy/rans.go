package entropy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// The coder is rANS with 32-bit states and 16-bit renormalization: a state
// lives in [ransLow, 2^32), so with tables of at most 16 bits each symbol
// reads or writes at most one word. numStates states are interleaved
// (symbol i uses state i % numStates) so the decoder's dependency chains
// overlap.
const (
	ransLow   = 1 << 16
	numStates = 4
	// MaxMagnitude bounds the values an escape can carry.
	MaxMagnitude = 1 << 20
	// escapeLenBits codes the bit length of an escaped value.
	escapeLenBits = 5
	maxEscapeBits = 23
)

var (
	ErrTruncated = errors.New("entropy: stream truncated")
	ErrCorrupt   = errors.New("entropy: stream corrupt")
)

// An Encoder codes tensors of symbols. Its buffers are reused across calls,
// so a warm Encoder does not allocate.
type Encoder struct {
	words []uint16 // written back to front
}

// Encode appends to dst the coded form of values, where values[i] is coded
// with table tables[i] of ts. Values beyond a table's range are escaped;
// their magnitude must not exceed MaxMagnitude.
func (e *Encoder) Encode(dst []byte, values []int32, tables []uint16, ts *TableSet) ([]byte, error) {
	return e.EncodeParts(dst, Part{values, tables, ts})
}

// A Part is a run of values coded with tables of one set.
type Part struct {
	Values []int32
	Tables []uint16
	Set    *TableSet
}

// EncodeParts appends to dst one stream of the parts' values in order, each
// part with its own table set: a Decoder reads it back with one Decode call
// per part.
func (e *Encoder) EncodeParts(dst []byte, parts ...Part) ([]byte, error) {
	e.words = e.words[:0]
	var x [numStates]uint32
	for i := range x {
		x[i] = ransLow
	}
	end := 0
	for _, p := range parts {
		if len(p.Values) != len(p.Tables) {
			return nil, errors.New("entropy: values and table indices differ in length")
		}
		if p.Set == nil {
			return nil, errors.New("entropy: a part without a table set")
		}
		end += len(p.Values)
	}
	for j := len(parts) - 1; j >= 0; j-- {
		p := parts[j]
		end -= len(p.Values)
		if err := e.encodePart(&x, end, p); err != nil {
			return nil, err
		}
	}
	return e.flush(dst, &x), nil
}

// encodePart pushes a part's values, last first; the part's first value is
// value number first of the stream, which picks its state.
func (e *Encoder) encodePart(x *[numStates]uint32, first int, p Part) error {
	ts := p.Set
	prec := ts.precision
	nt := uint16(len(ts.start))
	for i := len(p.Values) - 1; i >= 0; i-- {
		t := p.Tables[i]
		if t >= nt {
			return fmt.Errorf("entropy: table index %d at %d, set has %d", t, first+i, nt)
		}
		v := p.Values[i]
		if v > MaxMagnitude || v < -MaxMagnitude {
			return fmt.Errorf("entropy: value %d at %d exceeds ±%d", v, first+i, MaxMagnitude)
		}
		c := ts.cdf[ts.start[t]:]
		n := ts.length[t]
		s := v - ts.offset[t]
		st := &x[(first+i)%numStates]
		if s < 0 || s >= n-1 {
			// Escape: the decoder reads the symbol first, then the length,
			// then the bits, so they are pushed in the opposite order.
			ev := escapeValue(s, n)
			nb := uint(bits.Len32(ev))
			if nb > 16 {
				lo := nb - 16
				e.put(st, ev&(1<<lo-1), 1, lo)
				e.put(st, ev>>lo, 1, 16)
			} else if nb > 0 {
				e.put(st, ev, 1, nb)
			}
			e.put(st, uint32(nb), 1, escapeLenBits)
			s = n - 1
		}
		e.put(st, c[s], c[s+1]-c[s], prec)
	}
	return nil
}

// flush pushes the final states and appends the words to dst in the order
// the decoder reads them.
func (e *Encoder) flush(dst []byte, x *[numStates]uint32) []byte {
	for i := numStates - 1; i >= 0; i-- {
		e.words = append(e.words, uint16(x[i]>>16), uint16(x[i]))
	}
	for i := len(e.words) - 1; i >= 0; i-- {
		dst = binary.LittleEndian.AppendUint16(dst, e.words[i])
	}
	return dst
}

func (e *Encoder) put(x *uint32, start, freq uint32, prec uint) {
	v := *x
	if uint64(v) >= uint64(freq)<<(32-prec) {
		e.words = append(e.words, uint16(v))
		v >>= 16
	}
	*x = (v/freq)<<prec + v%freq + start
}

// escapeValue maps a symbol index s outside 0..n-2 to the non-negative
// number an escape carries: even below the table, odd above it.
func escapeValue(s, n int32) uint32 {
	if s < 0 {
		return uint32(-s-1) << 1
	}
	return uint32(s-(n-1))<<1 | 1
}

type decoder struct {
	src []byte
	pos int
	bad bool // read past the end
}

// renorm is split from refill so that it inlines into the decode loop.
func (d *decoder) renorm(x uint32) uint32 {
	if x >= ransLow {
		return x
	}
	return d.refill(x)
}

func (d *decoder) refill(x uint32) uint32 {
	if d.pos+2 <= len(d.src) {
		x = x<<16 | uint32(binary.LittleEndian.Uint16(d.src[d.pos:]))
		d.pos += 2
		return x
	}
	d.bad = true
	return x<<16 | 0xffff // keeps the state valid so decoding ends normally
}

func (d *decoder) raw(x uint32, k uint) (uint32, uint32) {
	v := x & (1<<k - 1)
	return v, d.renorm(x >> k)
}

// Decode fills values from src, decoding values[i] with table tables[i] of
// ts. It returns ErrTruncated or ErrCorrupt when src cannot be what Encode
// wrote for these tables; values then hold in-range garbage.
func Decode(src []byte, values []int32, tables []uint16, ts *TableSet) error {
	d, err := NewDecoder(src)
	if err != nil {
		return err
	}
	if err := d.Decode(values, tables, ts); err != nil {
		return err
	}
	return d.Close()
}

// A Decoder reads one stream that EncodeParts (or Encode) wrote, part by
// part, for models whose later tables depend on values decoded earlier:
// each part's tables may be computed from the parts before it.
type Decoder struct {
	d decoder
	x [numStates]uint32
	n int // values decoded so far; value i used state i % numStates
}

// NewDecoder starts decoding src.
func NewDecoder(src []byte) (*Decoder, error) {
	if len(src) < 4*numStates {
		return nil, ErrTruncated
	}
	dec := &Decoder{d: decoder{src: src, pos: 4 * numStates}}
	for i := range dec.x {
		dec.x[i] = binary.LittleEndian.Uint32(src[4*i:])
		if dec.x[i] < ransLow {
			return nil, ErrCorrupt
		}
	}
	return dec, nil
}

// Decode fills values with the stream's next len(values) values, decoding
// values[i] with table tables[i] of ts. After an error the Decoder is
// spent: its position in the stream is no longer known.
func (dec *Decoder) Decode(values []int32, tables []uint16, ts *TableSet) error {
	if len(values) != len(tables) {
		return errors.New("entropy: values and table indices differ in length")
	}
	if ts == nil {
		return errors.New("entropy: no table set")
	}
	d := &dec.d
	x := dec.x
	defer func() { dec.x, dec.n = x, dec.n+len(values) }()
	prec := ts.precision
	mask := uint32(1)<<prec - 1
	shift := prec - bucketBits
	nt := uint16(len(ts.start))
	for i := range values {
		t := tables[i]
		if t >= nt {
			return fmt.Errorf("entropy: table index %d at %d, set has %d", t, dec.n+i, nt)
		}
		st := &x[(dec.n+i)%numStates]
		v := *st
		slot := v & mask
		c := ts.cdf[ts.start[t]:]
		s := int32(ts.bucket[int(t)<<bucketBits+int(slot>>shift)])
		for c[s+1] <= slot {
			s++
		}
		v = (c[s+1]-c[s])*(v>>prec) + slot - c[s]
		v = d.renorm(v)
		if n := ts.length[t]; s == n-1 {
			var nb, ev uint32
			nb, v = d.raw(v, escapeLenBits)
			if nb > maxEscapeBits {
				*st = v
				return ErrCorrupt
			}
			if nb > 16 {
				var hi, lo uint32
				hi, v = d.raw(v, 16)
				lo, v = d.raw(v, uint(nb-16))
				ev = hi<<(nb-16) | lo
			} else if nb > 0 {
				ev, v = d.raw(v, uint(nb))
			}
			if nb > 0 && ev>>(nb-1) == 0 {
				// Encode writes e in exactly bits.Len32(e) bits; a longer
				// field would give the same values a second stream.
				*st = v
				return ErrCorrupt
			}
			if ev&1 == 0 {
				s = -int32(ev>>1) - 1
			} else {
				s = n - 1 + int32(ev>>1)
			}
		}
		*st = v
		val := s + ts.offset[t]
		if val > MaxMagnitude || val < -MaxMagnitude {
			return ErrCorrupt // no encoder writes such a value
		}
		values[i] = val
	}
	if d.bad {
		return ErrTruncated
	}
	return nil
}

// Close checks that the stream ended where the encoder ended it: every
// state back at its initial value and every byte read.
func (dec *Decoder) Close() error {
	if dec.d.bad {
		return ErrTruncated
	}
	for _, v := range dec.x {
		if v != ransLow {
			return ErrCorrupt
		}
	}
	if dec.d.pos != len(dec.d.src) {
		return ErrCorrupt
	}
	return nil
}
