package nn

import (
	"path/filepath"
	"testing"
)

// planCases are graphs with every kind of step a plan places or aliases:
// fused depth-to-space, GDN and IGDN in place, residual adds in place,
// elementwise ops.
var planCases = []struct{ onnx, in, out string }{
	{"tiny/g_s.onnx", "tiny/g_s.in.pb", "tiny/g_s.out.pb"},
	{"tiny/g_a.onnx", "tiny/g_a.in.pb", "tiny/g_a.out.pb"},
	{"nn/resblock.onnx", "nn/resblock.in.pb", "nn/resblock.out.pb"},
	{"nn/resblock_kept.onnx", "nn/resblock_kept.in.pb", "nn/resblock_kept.out.pb"},
	{"nn/igdn.onnx", "nn/igdn.in.pb", "nn/igdn.out.pb"},
	{"nn/elementwise.onnx", "nn/elementwise.in.pb", "nn/elementwise.out.pb"},
	{"nn/pixelshuffle_d2s.onnx", "nn/pixelshuffle_d2s.in.pb", "nn/pixelshuffle_d2s.out.pb"},
}

// The plan's predictions (each output's shape, which ops write in place)
// must match what the ops do: every planned place is taken, and places that
// are alive at once never overlap.
func TestMemoryPlanIsTaken(t *testing.T) {
	for _, c := range planCases {
		g := loadGraph(t, filepath.Join("../testdata", c.onnx))
		got, err := g.Run(readTensor(t, filepath.Join("../testdata", c.in)))
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, c.onnx, got, readTensor(t, filepath.Join("../testdata", c.out)))
		p := g.plan
		planned, sum := 0, 0
		for i, o := range p.out {
			if o == nil {
				continue
			}
			planned++
			sum += len(o.Data)
			if o.Shape == nil {
				t.Errorf("%s: step %d (%s) did not take its planned place", c.onnx, i, g.steps[i].name)
			}
		}
		if planned == 0 {
			t.Errorf("%s: nothing planned", c.onnx)
		}
		t.Logf("%s: %d of %d steps planned, arena %d floats for %d", c.onnx, planned, len(g.steps), arenaSize(p), sum)
	}
}

func arenaSize(p *memoryPlan) int {
	n := 0
	for _, s := range p.span {
		n = max(n, s[1])
	}
	return n
}

// A wrong plan costs memory, never a result: with every place put at the
// arena's start, all overlapping, each step must refuse a place that a live
// activation holds and fall back to the pool.
func TestOverlappingPlanFallsBack(t *testing.T) {
	for _, c := range planCases {
		g := loadGraph(t, filepath.Join("../testdata", c.onnx))
		in := readTensor(t, filepath.Join("../testdata", c.in))
		if _, err := g.Run(in); err != nil {
			t.Fatal(err)
		}
		p := g.plan
		arena := make([]float32, arenaSize(p))
		for i, o := range p.out {
			if o == nil {
				continue
			}
			n := len(o.Data)
			bad := &Tensor{Data: arena[:n:n]}
			delete(p.span, o)
			p.out[i] = bad
			p.span[bad] = [2]int{0, n}
		}
		got, err := g.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, c.onnx+" (overlapping plan)", got, readTensor(t, filepath.Join("../testdata", c.out)))
	}
}
