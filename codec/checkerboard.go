package codec

import (
	"fmt"
	"math"

	"github.com/lvc-codec/lvc/nn"
)

// The checkerboard context (META checkerboard, He et al. 2021): an intra
// frame codes y in two passes over the latent positions. The anchors, where
// row + column is even, are coded with the hyper-synthesis's means and
// scales. Every other position then gets a correction of both from the
// anchors' ŷ beside it and its own mean and scale, computed by the CTX
// network in fixed point like h_s, so both ends derive the same tables.
// With an anchor context (META anchor_context) the anchors take two passes
// themselves: those with row and column even first, then those with both
// odd, corrected by the CTXA network from the first ones at their corners.
// One y stream holds each pass's symbols in turn.

// neighbours are the anchors beside a second-pass position, in the order
// the CTX network takes their ŷ: above, left, right, below.
var neighbours = [4][2]int{{-1, 0}, {0, -1}, {0, 1}, {1, 0}}

// corners are the first anchors at the corners of a later anchor, in the
// order the CTXA network takes their ŷ.
var corners = [4][2]int{{-1, -1}, {-1, 1}, {1, -1}, {1, 1}}

// A contextPass is coded after the positions before it: its network
// corrects the means and tables of its targets from the ŷ at taps around
// each (decoded in earlier passes) and the target's own mean and scale.
type contextPass struct {
	net     *nn.FixedGraph
	taps    [4][2]int
	targets []int32 // positions within a plane, in raster order
	name    string  // for errors
}

// contextPasses gives, for a model with a checkerboard context, the
// positions (within a plane, in raster order) coded with the
// hyper-synthesis's means and scales alone, and the passes after them in
// coding order.
func (m *Model) contextPasses(yw, yh int) (first []int32, passes []contextPass) {
	positions := func(keep func(r, c int) bool) []int32 {
		var out []int32
		for i := range yw * yh {
			if keep(i/yw, i%yw) {
				out = append(out, int32(i))
			}
		}
		return out
	}
	second := contextPass{m.ctx, neighbours, positions(func(r, c int) bool { return (r+c)%2 == 1 }), "checkerboard context"}
	if m.ctxAnchor == nil {
		return positions(func(r, c int) bool { return (r+c)%2 == 0 }), []contextPass{second}
	}
	later := contextPass{m.ctxAnchor, corners, positions(func(r, c int) bool { return r%2 == 1 && c%2 == 1 }), "anchor context"}
	return positions(func(r, c int) bool { return r%2 == 0 && c%2 == 0 }), []contextPass{later, second}
}

// inEveryChannel gives the indices of y's elements at the positions of a
// plane, channel after channel.
func inEveryChannel(pos []int32, channels, plane int, s *frameScratch) []int32 {
	out := s.int32s(channels * len(pos))[:0]
	for c := range channels {
		for _, i := range pos {
			out = append(out, int32(c*plane)+i)
		}
	}
	return out
}

// contextChunk bounds how many positions one run of a context network takes,
// and so its buffers (6M int32 inputs per position, as much again in the
// kernel's padded copy): about 1.2 MB for M = 192, where a 3840x2160 frame's
// 16,320 second-pass positions at once would take 150 MB.
const contextChunk = 128

// contextCorrections runs a pass's network at its targets. It reads the
// ŷ = sym·2^16 + mean (fixed point) at the taps and the targets' means and
// scales; it returns, per target, M mean corrections then M scale
// corrections, as a [2M][len(targets)] plane.
func (m *Model) contextCorrections(pass contextPass, sym []int32, means []int64, scales []int32, yw, yh int, s *frameScratch) ([]int32, error) {
	M, p := m.Info.M, len(pass.targets)
	plane := yw * yh
	d := s.int32s(2 * M * p)
	in := s.int32s(6 * M * min(p, contextChunk))
	var at [4][contextChunk]int32
	for j0 := 0; j0 < p; j0 += contextChunk {
		part := pass.targets[j0:min(p, j0+contextChunk)]
		n := len(part)
		// Where each tap of each target lies in a plane, -1 outside the
		// frame (zero there, as the trained conv's padding).
		for k, nb := range pass.taps {
			for j, pos := range part {
				r, col := int(pos)/yw+nb[0], int(pos)%yw+nb[1]
				at[k][j] = -1
				if r >= 0 && r < yh && col >= 0 && col < yw {
					at[k][j] = int32(r*yw + col)
				}
			}
		}
		in := in[:6*M*n]
		for c := range M {
			cs, cm := sym[c*plane:(c+1)*plane], means[c*plane:(c+1)*plane]
			for k := range pass.taps {
				dst := in[(k*M+c)*n : (k*M+c+1)*n]
				for j, i := range at[k][:n] {
					dst[j] = 0
					if i >= 0 {
						dst[j] = clampInt32(int64(cs[i])<<nn.FixedFracBits + cm[i])
					}
				}
			}
			mu, sigma := in[(4*M+c)*n:(4*M+c+1)*n], in[(5*M+c)*n:(5*M+c+1)*n]
			for j, pos := range part {
				mu[j] = clampInt32(means[c*plane+int(pos)])
				sigma[j] = scales[c*plane+int(pos)]
			}
		}
		// loadContext made sure the network is pointwise and maps 6M
		// channels to 2M, so its output is [2M 1 n].
		out, _, err := pass.net.Run(in, 6*M, 1, n)
		if err != nil {
			return nil, fmt.Errorf("codec: %s: %w", pass.name, err)
		}
		for c := range 2 * M {
			copy(d[c*p+j0:c*p+j0+n], out[c*n:(c+1)*n])
		}
		pass.net.Recycle(out)
	}
	return d, nil
}

// applyContext corrects the means and table indices of a pass's targets
// from the symbols (sym, coded around means) of the passes before it,
// which it reads at the taps only.
func (m *Model) applyContext(pass contextPass, sym []int32, means []int64, scales []int32, tables []uint16, yw, yh int, s *frameScratch) error {
	if len(pass.targets) == 0 {
		return nil
	}
	d, err := m.contextCorrections(pass, sym, means, scales, yw, yh, s)
	if err != nil {
		return err
	}
	M, p, plane := m.Info.M, len(pass.targets), yw*yh
	for c := range M {
		for j, pos := range pass.targets {
			i := c*plane + int(pos)
			means[i] += int64(d[c*p+j])
			tables[i] = m.scaleIdx.Index(int64(scales[i]) + int64(d[(M+c)*p+j]))
		}
	}
	return nil
}

func clampInt32(v int64) int32 {
	return int32(min(max(v, math.MinInt32), math.MaxInt32))
}
