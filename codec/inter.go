package codec

// Inter frames (FORMAT.md 2.1): each channel of y is coded around the
// hyperprior's mean or around the reference frame's ŷ (the channel's mode),
// and whole 16×16 blocks may be skipped, taking the reference's ŷ.

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/lvc-codec/lvc/entropy"
	"github.com/lvc-codec/lvc/nn"
)

// Inter-frame channel modes, one byte per channel: 0 codes the channel
// around the hyperprior mean with its table; k in 1..maxInterMode codes it
// around the reference's ŷ, with the table index lowered by
// interScaleStep*(k-1) (a narrower distribution: residuals against the
// previous frame are smaller than the hyperprior expects).
const (
	maxInterMode   = 16
	interScaleStep = 4
)

// chooseModes picks, per channel, the mode whose tables say the channel
// costs the fewest bits at the positions not skipped (skip nil: none), and
// returns the modes and those bits; base is the frame's first y table.
func (m *Model) chooseModes(y []float32, means []int32, tables []uint16, prev []int64, plane int, base uint16, skip []bool) ([]byte, float64) {
	modes := make([]byte, m.Info.M)
	var total float64
	for c := range m.Info.M {
		best := math.Inf(1)
		for mode := 0; mode <= maxInterMode; mode++ {
			var bits float64
			for i := c * plane; i < (c+1)*plane; i++ {
				if skip != nil && skip[i-c*plane] {
					continue
				}
				t := int(base + modeTable(tables[i], byte(mode)))
				if mode == 0 {
					bits += m.tablesY.Bits(t, clampSymbol(y[i]-float32(means[i])/(1<<nn.FixedFracBits)))
				} else {
					bits += m.tablesY.Bits(t, clampSymbol(float32(float64(y[i])-float64(prev[i])/(1<<nn.FixedFracBits))))
				}
			}
			if bits < best {
				best, modes[c] = bits, byte(mode)
			}
		}
		total += best
	}
	return modes, total
}

// hyperOutput is what a z gives y: means, scales and table indices, and
// the channel modes chosen under them.
type hyperOutput struct {
	means, scales []int32
	tables        []uint16
	modes         []byte
}

// chooseHyper picks the hyper-output to code y with: the frame's own (own,
// whose z costs zBits), or the reference's when coding y with it is
// estimated to cost less. It returns the choice with its channel modes, and
// whether it is the reference's. An inter frame that reuses the reference's
// z sends none (an empty sub-stream 0): in a still scene the new z says
// little the old one did not.
func (m *Model) chooseHyper(y []float32, own *hyperOutput, ref *reference, zBits, zw, zh, plane int, q256 uint16) (*hyperOutput, bool, error) {
	base := m.yTableBase(q256)
	var fresh float64
	own.modes, fresh = m.chooseModes(y, own.means, own.tables, ref.yhat, plane, base, nil)
	if len(ref.z) != zw*zh*m.Info.N {
		return own, false, nil
	}
	old := &hyperOutput{}
	var err error
	if old.means, old.scales, old.tables, err = m.hyperParams(ref.z, zw, zh, nil); err != nil {
		return nil, false, err
	}
	var reused float64
	old.modes, reused = m.chooseModes(y, old.means, old.tables, ref.yhat, plane, base, nil)
	if reused >= fresh+float64(zBits) {
		return own, false, nil
	}
	return old, true, nil
}

func modeTable(t uint16, mode byte) uint16 {
	if mode == 0 {
		return t
	}
	return uint16(max(0, int(t)-interScaleStep*int(mode-1)))
}

// applyModes gives each element of y the mean it is coded around, in fixed
// point, and the table it is coded with, for the channel modes of an inter
// frame (nil modes: an intra frame).
func (m *Model) applyModes(means []int32, tables []uint16, modes []byte, ref *reference, plane int, s *frameScratch) []int64 {
	out := s.int64s(len(means))
	for i, v := range means {
		mode := byte(0)
		if modes != nil {
			mode = modes[i/plane]
		}
		if mode == 0 {
			out[i] = int64(v)
			continue
		}
		out[i] = ref.yhat[i]
		tables[i] = modeTable(tables[i], mode)
	}
	return out
}

// The channel modes: 17 bytes h[0..16] (sub-stream 2), a weight per mode,
// and the M modes at the head of the y stream, coded with frequencies in
// proportion to the weights (modeTableSet). Frames of version 1's first
// form (three sub-streams) store them raw as sub-stream 2.
const modeWeights = maxInterMode + 1

// modeTableSet is the table the weights give, in integer arithmetic so that
// both ends build it alike: every symbol (the escape too) has frequency 1,
// the rest of 2^16 is shared in proportion to the weights (equally when all
// are zero), and what integer division leaves goes to mode 0.
func modeTableSet(h []byte) (*entropy.TableSet, error) {
	const total = 1 << 16
	avail := uint32(total - modeWeights - 1)
	var sum uint32
	for _, v := range h {
		sum += uint32(v)
	}
	allZero := sum == 0
	if allZero {
		sum = modeWeights
	}
	freqs := make([]uint32, modeWeights+1)
	used := uint32(0)
	for k := range modeWeights {
		w := uint32(h[k])
		if allZero {
			w = 1
		}
		freqs[k] = 1 + w*avail/sum
		used += freqs[k]
	}
	freqs[modeWeights] = 1
	freqs[0] += total - used - 1
	return entropy.NewTableSet(16, [][]uint32{freqs}, []int32{0})
}

// modesPart returns the modes' weights, from their own histogram, and the
// part of the y stream that codes the modes with them.
func modesPart(modes []byte) ([]byte, entropy.Part, error) {
	var count [modeWeights]int
	most := 1
	for _, k := range modes {
		count[k]++
		most = max(most, count[k])
	}
	h := make([]byte, modeWeights)
	for k, n := range count {
		if n > 0 {
			h[k] = byte(max(1, (255*n+most/2)/most))
		}
	}
	ts, err := modeTableSet(h)
	if err != nil {
		return nil, entropy.Part{}, err
	}
	values := make([]int32, len(modes))
	for i, k := range modes {
		values[i] = int32(k)
	}
	return h, entropy.Part{Values: values, Tables: make([]uint16, len(values)), Set: ts}, nil
}

// decodeModes reads m channel modes from d, coded with weights h.
func decodeModes(d *entropy.Decoder, h []byte, m int) ([]byte, error) {
	if len(h) != modeWeights {
		return nil, fmt.Errorf("codec: %d channel mode weights, want %d (corrupt file)", len(h), modeWeights)
	}
	ts, err := modeTableSet(h)
	if err != nil {
		return nil, err
	}
	values, err := decodeBounded(d, ts, m, maxInterMode, "channel mode")
	if err != nil {
		return nil, err
	}
	modes := make([]byte, m)
	for c, v := range values {
		modes[c] = byte(v)
	}
	return modes, nil
}

// decodeBounded reads n values coded with the one table of ts, each of
// which must lie in 0..top (a table's escape could give any other).
func decodeBounded(d *entropy.Decoder, ts *entropy.TableSet, n int, top int32, what string) ([]int32, error) {
	values := make([]int32, n)
	if err := d.Decode(values, make([]uint16, n), ts); err != nil {
		return nil, fmt.Errorf("codec: %ss: %w", what, err)
	}
	for i, v := range values {
		if v < 0 || v > top {
			return nil, fmt.Errorf("codec: %s %d at %d (corrupt file)", what, v, i)
		}
	}
	return values, nil
}

// rawModes checks the raw modes of a first-form inter frame.
func rawModes(stream []byte, m int) ([]byte, error) {
	if len(stream) != m {
		return nil, fmt.Errorf("codec: %d channel modes, want %d (corrupt file)", len(stream), m)
	}
	for c, mode := range stream {
		if mode > maxInterMode {
			return nil, fmt.Errorf("codec: channel %d mode %d (corrupt file)", c, mode)
		}
	}
	return stream, nil
}

// Skipped positions: an inter frame may skip latent positions, each a 16×16
// block of the frame. A skipped position takes the reference's ŷ in every
// channel and codes no symbol, so the still parts of a scene cost a fraction
// of a bit per block instead of a few bits per channel. Sub-stream 3 is
// empty for none, or a byte k in 1..255; then the y stream holds, after the
// modes, one flag per position coded with P(skip) = k/256.

const skipPrecision = 16

// skipTable is the binary table of P(skip) = k/256; its escape symbol, which
// a valid map never uses, gets the least frequency.
func skipTable(k byte) (*entropy.TableSet, error) {
	one := uint32(k) << (skipPrecision - 8)
	return entropy.NewTableSet(skipPrecision, [][]uint32{{1<<skipPrecision - one - 1, one, 1}}, []int32{0})
}

// skipPart returns the probability byte that fits the flags' share and the
// part of the y stream that codes them.
func skipPart(skip []bool) (byte, entropy.Part, error) {
	flags := make([]int32, len(skip))
	n := 0
	for i, s := range skip {
		if s {
			flags[i], n = 1, n+1
		}
	}
	k := byte(min(max(math.Round(256*float64(n)/float64(len(skip))), 1), 255))
	ts, err := skipTable(k)
	if err != nil {
		return 0, entropy.Part{}, err
	}
	return k, entropy.Part{Values: flags, Tables: make([]uint16, len(flags)), Set: ts}, nil
}

// decodeSkipFlags reads n flags from d, coded with P(skip) = k/256.
func decodeSkipFlags(d *entropy.Decoder, k byte, n int) ([]bool, error) {
	if k == 0 {
		return nil, errors.New("codec: skip map with probability 0 (corrupt file)")
	}
	ts, err := skipTable(k)
	if err != nil {
		return nil, err
	}
	flags, err := decodeBounded(d, ts, n, 1, "skip flag")
	if err != nil {
		return nil, err
	}
	skip := make([]bool, n)
	for i, f := range flags {
		skip[i] = f == 1
	}
	return skip, nil
}

// interStreams lays out an inter frame's four sub-streams: z (empty when
// reused), one stream of the modes, the skip flags (if any) and y, the
// modes' weights, and the skip probability byte (empty for none).
func interStreams(enc *entropy.Encoder, zBytes []byte, modes []byte, skip []bool, y entropy.Part) ([][]byte, error) {
	h, modePart, err := modesPart(modes)
	if err != nil {
		return nil, err
	}
	parts := []entropy.Part{modePart}
	var k []byte
	if skip != nil {
		p, flags, err := skipPart(skip)
		if err != nil {
			return nil, err
		}
		k, parts = []byte{p}, append(parts, flags)
	}
	body, err := enc.EncodeParts(nil, append(parts, y)...)
	if err != nil {
		return nil, err
	}
	return [][]byte{zBytes, body, h, k}, nil
}

// decodeSideInfo reads a four-stream inter frame's modes and skip flags (nil
// for none) and returns the decoder, positioned at y's symbols.
func decodeSideInfo(streams [][]byte, m, positions int) ([]byte, []bool, *entropy.Decoder, error) {
	if len(streams[3]) > 1 {
		return nil, nil, nil, fmt.Errorf("codec: skip probability of %d bytes (corrupt file)", len(streams[3]))
	}
	d, err := entropy.NewDecoder(streams[1])
	if err != nil {
		return nil, nil, nil, fmt.Errorf("codec: latents: %w", err)
	}
	modes, err := decodeModes(d, streams[2], m)
	if err != nil {
		return nil, nil, nil, err
	}
	var skip []bool
	if len(streams[3]) == 1 {
		if skip, err = decodeSkipFlags(d, streams[3][0], positions); err != nil {
			return nil, nil, nil, err
		}
	}
	return modes, skip, d, nil
}

// codedElements lists, channel by channel, the elements of y at positions
// the map does not skip: the order of the y sub-stream's symbols.
func codedElements(skip []bool, channels int) []int32 {
	plane := len(skip)
	out := []int32{} // not nil, which permute takes for every element
	for c := range channels {
		for p, s := range skip {
			if !s {
				out = append(out, int32(c*plane+p))
			}
		}
	}
	return out
}

// applySkips sets each skipped element's mean to the reference and its
// symbol to zero, so that its ŷ is the reference's exactly.
func applySkips(skip []bool, mean []int64, sym []int32, ref *reference) {
	plane := len(skip)
	for i := range mean {
		if skip[i%plane] {
			mean[i], sym[i] = ref.yhat[i], 0
		}
	}
}

// interFrame is what an inter frame's y is coded from.
type interFrame struct {
	x      *nn.Tensor // the frame, [1,3,ph,pw]
	w, h   int        // its image area
	y      []float32
	yw, yh int
	q256   uint16
	zBytes []byte // sub-stream 0: the frame's z, or empty for the reference's
}

// interCoding is one way to code an inter frame's y, before entropy coding.
type interCoding struct {
	modes  []byte
	skip   []bool // nil: no position skipped
	sym    []int32
	tables []uint16 // in the frame's table set
	lat    *Latents
	next   *reference
	pixels *nn.Tensor // as g_s draws the frame; nil until synthesized
}

// encodeInterFrame codes y of an inter frame with the hyper-output chosen
// for it. When the reference keeps its pixels (and the model has its λs),
// the coding without skips is
// the trial that chooseSkips judges blocks by, and the coding with skips
// replaces it only if the frame as g_s draws it then costs less in total.
// That check counts what the per-block choice cannot: a skipped block also
// changes its neighbours' pixels through g_s's receptive field.
func (m *Model) encodeInterFrame(enc *entropy.Encoder, f *interFrame, hyper *hyperOutput, ref *reference, keepPixels bool) ([][]byte, *interCoding, error) {
	c := m.codeInter(f, hyper, hyper.modes, nil, ref)
	var err error
	if ref.pixels != nil && len(m.Info.Lambdas) == m.Info.Qualities {
		if c, err = m.trySkips(f, hyper, ref, c); err != nil {
			return nil, nil, err
		}
	}
	if keepPixels {
		if c.pixels == nil {
			if c.pixels, err = m.framePixels(c.lat, f.q256); err != nil {
				return nil, nil, err
			}
		}
		c.next.pixels = c.pixels
	}
	var order []int32
	if c.skip != nil {
		order = codedElements(c.skip, m.Info.M)
	}
	streams, err := interStreams(enc, f.zBytes, c.modes, c.skip,
		entropy.Part{Values: permute(c.sym, order), Tables: permute(c.tables, order), Set: m.tablesY})
	if err != nil {
		return nil, nil, err
	}
	return streams, c, nil
}

// codeInter gives each element of y its mean (by the modes), symbol and
// table, skipping the positions skip says (nil: none), and the ŷ the
// decoder will reconstruct.
func (m *Model) codeInter(f *interFrame, hyper *hyperOutput, modes []byte, skip []bool, ref *reference) *interCoding {
	tables := slices.Clone(hyper.tables)
	mean := m.applyModes(hyper.means, tables, modes, ref, f.yw*f.yh, nil)
	sym := make([]int32, len(f.y))
	for i, v := range f.y {
		sym[i] = symbolAround(v, mean[i])
	}
	if skip != nil {
		applySkips(skip, mean, sym, ref)
	}
	m.toTableSet(tables, f.q256)
	lat, next := m.reconstruct(sym, mean, f.q256, f.yw, f.yh)
	return &interCoding{modes: modes, skip: skip, sym: sym, tables: tables, lat: lat, next: next}
}

// trySkips synthesizes the coding without skips (plain), chooses blocks to
// skip by it, and returns the coding with them if it costs less, else
// plain; either has its pixels.
func (m *Model) trySkips(f *interFrame, hyper *hyperOutput, ref *reference, plain *interCoding) (*interCoding, error) {
	var err error
	if plain.pixels, err = m.framePixels(plain.lat, f.q256); err != nil {
		return nil, err
	}
	plainSSE := blockSSE(f.x, plain.pixels, f.w, f.h, f.yw, f.yh)
	plainBits := m.positionBits(plain)
	skip, mapBits, err := m.chooseSkips(f, plainBits, plainSSE, ref)
	if err != nil {
		return nil, err
	}
	if skip == nil {
		return plain, nil
	}
	modes, _ := m.chooseModes(f.y, hyper.means, hyper.tables, ref.yhat, f.yw*f.yh, m.yTableBase(f.q256), skip)
	skipped := m.codeInter(f, hyper, modes, skip, ref)
	if skipped.pixels, err = m.framePixels(skipped.lat, f.q256); err != nil {
		return nil, err
	}
	var added float64 // squared error the skips add, over the whole frame
	for p, v := range blockSSE(f.x, skipped.pixels, f.w, f.h, f.yw, f.yh) {
		added += v - plainSSE[p]
	}
	// Bits the skips save, before the map's cost. (Summed per position
	// first, so a tie at the last bit may fall the other way than a flat
	// sum would; the decoder reads the choice from the stream.)
	var saved float64
	for p, b := range m.positionBits(skipped) {
		saved += plainBits[p] - b
	}
	if m.lambdaAt(f.q256)*255*255/3*added < saved-mapBits {
		return skipped, nil
	}
	return plain, nil
}

// positionBits is what the tables say c's coded symbols cost, summed over
// channels per position of the plane (skipped positions cost none).
func (m *Model) positionBits(c *interCoding) []float64 {
	plane := len(c.sym) / m.Info.M
	bits := make([]float64, plane)
	for i, s := range c.sym {
		if c.skip == nil || !c.skip[i%plane] {
			bits[i%plane] += m.tablesY.Bits(int(c.tables[i]), s)
		}
	}
	return bits
}

// chooseSkips decides which positions of an inter frame to skip, nil for
// none, from the coding without skips (its bits and squared error per
// block): it skips each 16×16 block where the reference's pixels cost less
// than coding it, λ·255²·SSE/3 + bits (the per-block share of the training
// loss), if all of them together save more than the map costs. It also returns that
// cost, in bits.
func (m *Model) chooseSkips(f *interFrame, bits, plainSSE []float64, ref *reference) ([]bool, float64, error) {
	plane := f.yw * f.yh
	refSSE := blockSSE(f.x, ref.pixels, f.w, f.h, f.yw, f.yh)
	weight := m.lambdaAt(f.q256) * 255 * 255 / 3
	skip := make([]bool, plane)
	var saved float64
	for p := range skip {
		if gain := weight*(plainSSE[p]-refSSE[p]) + bits[p]; gain > 0 {
			skip[p], saved = true, saved+gain
		}
	}
	if saved == 0 {
		return nil, 0, nil
	}
	// A still block that codes to zeros costs a fraction of a bit: the map
	// (its byte and its flags) can cost more than the blocks save.
	_, part, err := skipPart(skip)
	if err != nil {
		return nil, 0, err
	}
	mapBits := 8.0
	for _, v := range part.Values {
		mapBits += part.Set.Bits(0, v)
	}
	if saved <= mapBits {
		return nil, 0, nil
	}
	return skip, mapBits, nil
}

// blockSSE is the squared error between the frame x and a synthesized
// frame, both [1,3,ph,pw], per 16×16 block over the w×h image area, with the
// synthesized values rounded to 8 bits as the decoder outputs them.
func blockSSE(x, out *nn.Tensor, w, h, yw, yh int) []float64 {
	pw, plane := x.Shape[3], x.Shape[2]*x.Shape[3]
	sse := make([]float64, yw*yh)
	for c := range 3 {
		xs, ys := x.Data[c*plane:(c+1)*plane], out.Data[c*plane:(c+1)*plane]
		for r := range h {
			row := (r / 16) * yw
			for col := range w {
				v := math.Round(float64(min(max(ys[r*pw+col], 0), 1))*255) / 255
				d := float64(xs[r*pw+col]) - v
				sse[row+col/16] += d * d
			}
		}
	}
	return sse
}
