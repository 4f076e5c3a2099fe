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
// One y stream holds the anchors' symbols, then the others'.

// neighbours are the anchors beside a second-pass position, in the order
// the CTX network takes their ŷ: above, left, right, below.
var neighbours = [4][2]int{{-1, 0}, {0, -1}, {0, 1}, {1, 0}}

// checkerboardOrder gives the indices of y's elements in coding order:
// every channel's anchors, then every channel's second-pass positions,
// each in channel-major raster order. second holds the positions (within a
// plane) of the second pass.
func checkerboardOrder(channels, yw, yh int) (anchors, rest, second []int32) {
	plane := yw * yh
	var first []int32
	for i := range plane {
		if (i/yw+i%yw)%2 == 0 {
			first = append(first, int32(i))
		} else {
			second = append(second, int32(i))
		}
	}
	inEveryChannel := func(pos []int32) []int32 {
		out := make([]int32, 0, channels*len(pos))
		for c := range channels {
			for _, i := range pos {
				out = append(out, int32(c*plane)+i)
			}
		}
		return out
	}
	return inEveryChannel(first), inEveryChannel(second), second
}

// contextChunk bounds how many positions one run of the CTX network takes,
// and so its buffers (6M int32 inputs per position, as much again in the
// kernel's padded copy): about 1.2 MB for M = 192, where a 3840x2160 frame's
// 16,320 second-pass positions at once would take 150 MB.
const contextChunk = 128

// contextCorrections runs the CTX network at the second-pass positions. It
// reads the anchors' ŷ = sym·2^16 + mean (fixed point) and the second-pass
// positions' means and scales; it returns, per position in second, M mean
// corrections then M scale corrections, as a [2M][len(second)] plane.
func (m *Model) contextCorrections(sym []int32, means []int64, scales []int32, second []int32, yw, yh int) ([]int32, error) {
	M, p := m.Info.M, len(second)
	plane := yw * yh
	d := make([]int32, 2*M*p)
	in := make([]int32, 6*M*min(p, contextChunk))
	var at [4][contextChunk]int32
	for j0 := 0; j0 < p; j0 += contextChunk {
		part := second[j0:min(p, j0+contextChunk)]
		n := len(part)
		// Where each neighbour of each position lies in a plane, -1
		// outside the frame (zero there, as the trained conv's padding).
		for k, nb := range neighbours {
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
			for k := range neighbours {
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
		out, shape, err := m.ctx.Run(in, 6*M, 1, n)
		if err != nil {
			return nil, fmt.Errorf("codec: checkerboard context: %w", err)
		}
		if shape != [3]int{2 * M, 1, n} {
			return nil, fmt.Errorf("codec: checkerboard context gives %v, want [%d 1 %d]", shape, 2*M, n)
		}
		for c := range 2 * M {
			copy(d[c*p+j0:c*p+j0+n], out[c*n:(c+1)*n])
		}
	}
	return d, nil
}

// applyContext corrects the means and table indices of the second-pass
// positions from the anchors' symbols (sym, coded around means). It reads
// sym at the anchors only.
func (m *Model) applyContext(sym []int32, means []int64, scales []int32, tables []uint16, second []int32, yw, yh int) error {
	if len(second) == 0 {
		return nil
	}
	d, err := m.contextCorrections(sym, means, scales, second, yw, yh)
	if err != nil {
		return err
	}
	M, p, plane := m.Info.M, len(second), yw*yh
	for c := range M {
		for j, pos := range second {
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
