package nn

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func benchConv(b *testing.B, k, ch, h, w int, kern microKernel, direct bool) {
	benchConvShape(b, k, ch, ch, h, w, kern, direct)
}

func benchConvShape(b *testing.B, k, cin, cout, h, w int, kern microKernel, direct bool) {
	wt := NewTensor(cout, cin, k, k)
	for i := range wt.Data {
		wt.Data[i] = float32(i%17-8) * 0.01
	}
	c, err := newConv(onnxNode{attrs: map[string]attribute{"pads": {ints: []int64{int64(k / 2), int64(k / 2), int64(k / 2), int64(k / 2)}}}},
		[]*Tensor{nil, wt, NewTensor(cout)})
	if err != nil {
		b.Fatal(err)
	}
	// Either way, whatever winogradEligible would choose.
	if direct || k != 3 {
		c.packed = packWeights(wt.Data, cout, cin*k*k)
	} else {
		c.wino = winogradWeights(wt.Data, cout, cin)
	}
	x := NewTensor(1, cin, h, w)
	for i := range x.Data {
		x.Data[i] = float32(i % 7)
	}
	saved := kernel
	kernel = kern
	defer func() { kernel = saved }()
	var pool bufferPool
	// A warm-up run fills the pool: make bench-docs times only 3 runs, and
	// first-touch page faults on Winograd's larger scratch would dominate them.
	out, err := c.run([]*Tensor{x}, &pool)
	if err != nil {
		b.Fatal(err)
	}
	pool.put(out)
	b.ResetTimer()
	for range b.N {
		out, err := c.run([]*Tensor{x}, &pool)
		if err != nil {
			b.Fatal(err)
		}
		pool.put(out)
	}
	flops := 2.0 * float64(cin*cout*k*k*h*w)
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkConv is the yardstick: 128->128 channels at 256x384,
// with every kernel this CPU has; 3x3 also as a direct convolution, against
// which Winograd's GFLOP/s (counted as direct ones) are its speed-up.
func BenchmarkConv(b *testing.B) {
	for _, k := range []int{3, 5} {
		for _, kern := range availableKernels() {
			b.Run(fmt.Sprintf("%dx%d/%s", k, k, kern.name), func(b *testing.B) { benchConv(b, k, 128, 256, 384, kern, false) })
			if k == 3 {
				b.Run(fmt.Sprintf("%dx%d-direct/%s", k, k, kern.name), func(b *testing.B) { benchConv(b, k, 128, 256, 384, kern, true) })
			}
		}
	}
}

// BenchmarkConvSynthesis times the 3x3 convolutions of the shipped g_s for
// a 768x512 image, each with Winograd and direct, to choose between them.
func BenchmarkConvSynthesis(b *testing.B) {
	for _, s := range []struct{ cin, cout, h, w int }{
		{192, 256, 32, 48}, {64, 64, 64, 96}, {64, 256, 64, 96}, {64, 64, 128, 192}, {64, 256, 128, 192}, {64, 12, 256, 384},
	} {
		for _, how := range []string{"winograd", "direct"} {
			b.Run(fmt.Sprintf("%d-%d-%dx%d/%s", s.cin, s.cout, s.w, s.h, how), func(b *testing.B) {
				benchConvShape(b, 3, s.cin, s.cout, s.h, s.w, kernel, how == "direct")
			})
		}
	}
}

// BenchmarkGraphFile times a whole ONNX graph, for comparisons against other
// runtimes on the same file:
//
//	LVC_BENCH_ONNX=g_s.onnx LVC_BENCH_SHAPE=1,192,32,48 go test -bench GraphFile ./nn
//
// Its other inputs (scalers) get ones in the shapes the file declares.
// LVC_BENCH_PORTABLE=1 forces the portable kernel. LVC_BENCH_STEPS=1 also
// prints each step's mean time, slowest first.
func BenchmarkGraphFile(b *testing.B) {
	path := os.Getenv("LVC_BENCH_ONNX")
	if path == "" {
		b.Skip("LVC_BENCH_ONNX not set")
	}
	g := loadGraph(b, path)
	shape := benchShape(b, "LVC_BENCH_SHAPE")
	if os.Getenv("LVC_BENCH_PORTABLE") == "1" {
		saved := kernel
		kernel = portable
		defer func() { kernel = saved }()
	}
	x := NewTensor(shape...)
	for i := range x.Data {
		x.Data[i] = float32(i%11) - 5
	}
	// Other inputs (a model's per-quality scalers s0, s1, ...) get ones, in
	// the shape the file declares for them (free dimensions 1).
	inputs := map[string]*Tensor{}
	for _, in := range g.Inputs() {
		if in.Name == "x" {
			continue
		}
		if in.Shape == nil {
			b.Fatalf("%s declares no shape for input %s", path, in.Name)
		}
		shape := slices.Clone(in.Shape)
		for i, d := range shape {
			shape[i] = max(d, 1)
		}
		s := NewTensor(shape...)
		for i := range s.Data {
			s.Data[i] = 1
		}
		inputs[in.Name] = s
	}
	inputs["x"] = x
	if _, err := g.RunNamed(inputs); err != nil { // warm-up fills the buffer pool
		b.Fatal(err)
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	steps := make([]time.Duration, len(g.steps))
	if os.Getenv("LVC_BENCH_STEPS") == "1" {
		g.stepTime = func(i int, d time.Duration) { steps[i] += d }
	}
	b.ResetTimer()
	for range b.N {
		if _, err := g.RunNamed(inputs); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if g.stepTime != nil {
		printSteps(g, steps, b.N)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/1e6, "MBalloc/op")
}

// printSteps prints the mean time of each step, slowest first, with what
// the step is.
func printSteps(g *Graph, total []time.Duration, runs int) {
	order := make([]int, len(g.steps))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return total[order[a]] > total[order[b]] })
	fmt.Printf("\nmean time per step over %d runs (the benchmark may be called more than once):\n", runs)
	for _, i := range order {
		s := g.steps[i]
		what := fmt.Sprintf("%T", s.op)
		if c, ok := s.op.(*convOp); ok {
			what = fmt.Sprintf("conv %dx%d %d->%d", c.kh, c.kw, c.cin, c.cout)
			for _, f := range []struct {
				on   bool
				name string
			}{{c.wino != nil, "Winograd"}, {c.residual, "+residual"}, {c.d2s > 0, fmt.Sprintf("d2s %d", c.d2s)}} {
				if f.on {
					what += " " + f.name
				}
			}
		}
		fmt.Printf("%8.2f ms  %-28s %s\n", float64(total[i].Microseconds())/1000/float64(runs), what, s.name)
	}
}

func benchShape(b *testing.B, env string) []int {
	return parseShape(b, env, os.Getenv(env))
}

func parseShape(b *testing.B, env, spec string) []int {
	var shape []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			b.Fatalf("%s: %v", env, err)
		}
		shape = append(shape, n)
	}
	return shape
}

// BenchmarkKernel times the micro-kernels alone, at the depth of a 3x3 conv
// with 64 input channels, on one core.
func BenchmarkKernel(b *testing.B) {
	const k = 576
	a := make([]float32, k*mr)
	for i := range a {
		a[i] = float32(i%5) * 0.1
	}
	for _, kern := range availableKernels() {
		bb := make([]float32, k*kern.nr)
		for i := range bb {
			bb[i] = float32(i%3) * 0.2
		}
		tile := make([]float32, mr*kern.nr)
		rows := packedRows(k, kern.nr)
		b.Run(kern.name, func(b *testing.B) {
			for range b.N {
				kern.run(k, a, bb, rows, tile)
			}
			b.ReportMetric(2*mr*float64(kern.nr)*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkScaleChannels is an elementwise op broadcasting per channel, at
// the size of g_s's largest activation: [1,64,256,384] times [1,64,1,1], in
// place. (The per-quality scalers themselves are fused into the GDNs now;
// this is the path of a Mul or Add that nothing fuses.)
func BenchmarkScaleChannels(b *testing.B) {
	x, s := NewTensor(1, 64, 256, 384), NewTensor(1, 64, 1, 1)
	for i := range s.Data {
		s.Data[i] = 1
	}
	op := &binaryOp{kind: "Mul", inPlace: true}
	var pool bufferPool
	b.SetBytes(int64(8 * len(x.Data)))
	for range b.N {
		if _, err := op.run([]*Tensor{x, s}, &pool); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFixedConv times the fixed-point convolutions of the shipped
// entropy model for a 768x512 image: h_s's two 3x3 upsampling convolutions
// and its 1x1 output, and the checkerboard context's two 1x1 layers on one
// chunk of 128 positions; with the portable micro-kernel and the one this
// CPU runs.
func BenchmarkFixedConv(b *testing.B) {
	shapes := []struct {
		name               string
		k, cin, cout, h, w int
	}{
		{"hs-up1", 3, 64, 256, 8, 12},
		{"hs-up2", 3, 64, 256, 16, 24},
		{"hs-out", 1, 64, 384, 32, 48},
		{"ctx-in", 1, 1152, 64, 1, 128},
		{"ctx-out", 1, 64, 384, 1, 128},
	}
	native := fixedBlock
	defer func() { fixedBlock = native }()
	blocks := availableFixedBlocks()
	names := slices.Sorted(maps.Keys(blocks))
	for _, s := range shapes {
		wt := NewTensor(s.cout, s.cin, s.k, s.k)
		for i := range wt.Data {
			wt.Data[i] = float32(i%17-8) * 0.01
		}
		c, err := newConv(onnxNode{attrs: map[string]attribute{"pads": {ints: []int64{int64(s.k / 2), int64(s.k / 2), int64(s.k / 2), int64(s.k / 2)}}}},
			[]*Tensor{nil, wt, NewTensor(s.cout)})
		if err != nil {
			b.Fatal(err)
		}
		fc, err := newFixedConv(c)
		if err != nil {
			b.Fatal(err)
		}
		x := make([]int32, s.cin*s.h*s.w)
		for i := range x {
			x[i] = int32(i%7-3) << FixedFracBits
		}
		for _, name := range names {
			b.Run(s.name+"/"+name, func(b *testing.B) {
				fixedBlock = blocks[name]
				out, padded := make([]int32, s.cout*s.h*s.w), make([]int32, fc.paddedSize(s.h, s.w))
				for range b.N {
					fc.run(x, s.h, s.w, out, padded)
				}
				macs := float64(s.cin * s.cout * s.k * s.k * s.h * s.w)
				b.ReportMetric(macs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
	}
}
