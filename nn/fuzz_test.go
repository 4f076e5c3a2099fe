package nn

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the ONNX reader and compiler, checks
// that Check agrees with Load, and runs whatever loads on a small input,
// forwards and (LoadDifferentiable) backwards: errors are fine, panics and
// runaway allocations are not.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("../testdata/nn/*.onnx")
	bad, _ := filepath.Glob("../testdata/nn/bad/*.onnx")
	files = append(files, bad...)
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil && len(b) < 8<<10 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Load(data)
		inputs, checkErr := Check(data)
		if (err == nil) != (checkErr == nil) {
			t.Fatalf("Load says %v, Check says %v", err, checkErr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(inputs, g.Inputs()) {
			t.Fatalf("Check gives inputs %v, Load's graph takes %v", inputs, g.Inputs())
		}
		// Small inputs of a few channel counts, and the shape the file
		// declares (free dimensions 5): a graph refuses the others.
		var shapes [][]int
		for _, c := range []int{1, 3, 4, 6, 8, 12} {
			shapes = append(shapes, []int{1, c, 6, 5})
		}
		if declared := declaredProbe(inputs); declared != nil {
			shapes = append(shapes, declared)
		}
		for _, shape := range shapes {
			g.Run(NewTensor(shape...))
		}
		if fg, err := LoadFixed(data); err == nil {
			fg.Run(make([]int32, 4*3*3), 4, 3, 3)
		}
		dg, err := LoadDifferentiable(data)
		if err != nil || len(dg.inputs) != 1 {
			return
		}
		name := dg.InputNames()[0]
		for _, shape := range shapes {
			tape, err := dg.Record(map[string]*Tensor{name: NewTensor(shape...)})
			if err != nil {
				continue
			}
			grad := NewTensor(tape.Output(0).Shape...)
			for i := range grad.Data {
				grad.Data[i] = 1
			}
			tape.Backward(name, grad)
		}
	})
}

// declaredProbe gives a small input in the shape a one-input graph
// declares, free dimensions 5, or nil when it declares none or too large a
// one to run in a fuzz iteration.
func declaredProbe(inputs []Input) []int {
	if len(inputs) != 1 || inputs[0].Shape == nil {
		return nil
	}
	shape := slices.Clone(inputs[0].Shape)
	n := 1
	for i, d := range shape {
		if d < 0 {
			shape[i] = 5
		}
		n *= max(shape[i], 1)
		if n > 1<<16 {
			return nil
		}
	}
	return shape
}

// FuzzWinograd runs F(2x2, 3x3) and the direct convolution on fuzzed sizes
// and paddings: they must agree within float rounding, and neither may
// panic. Model graphs reach Winograd only with 16+ input channels, which the
// graph fuzzer's small inputs never have.
func FuzzWinograd(f *testing.F) {
	f.Add(uint8(16), uint8(32), uint8(9), uint8(70), uint8(1), uint8(1), uint8(1), uint8(1))
	f.Add(uint8(1), uint8(1), uint8(1), uint8(1), uint8(0), uint8(2), uint8(2), uint8(0))
	f.Fuzz(func(t *testing.T, cin, cout, h, w, padT, padL, padB, padR uint8) {
		c := &convOp{cin: int(cin%24) + 1, cout: int(cout%40) + 1, kh: 3, kw: 3, strideH: 1, strideW: 1, groups: 1,
			padT: int(padT % 8), padL: int(padL % 8), padB: int(padB % 8), padR: int(padR % 8)}
		h2, w2 := int(h%40)+1, int(w%150)+1
		if h2+c.padT+c.padB < 3 || w2+c.padL+c.padR < 3 {
			return
		}
		weights := make([]float32, c.cout*c.cin*9)
		for i := range weights {
			weights[i] = float32(i%13-6) / 7 // not dyadic, so both paths round
		}
		c.packed = packWeights(weights, c.cout, c.cin*9)
		c.wino = winogradWeights(weights, c.cout, c.cin)
		c.bias = make([]float32, c.cout)
		x := make([]float32, c.cin*h2*w2)
		for i := range x {
			x[i] = float32(i%11-5) / 3
		}
		oh, ow := c.outSize(h2, w2)
		var p bufferPool
		want, got := make([]float32, c.cout*oh*ow), make([]float32, c.cout*oh*ow)
		for i := range got {
			got[i] = float32(math.NaN()) // every element must be written
		}
		c.runStrips(x, h2, w2, want, oh, ow, &p)
		c.runWinograd(x, h2, w2, got, oh, ow, &p)
		tol := float64(c.cin*9) * (6.0 / 7) * (5.0 / 3) * 1e-6
		for i := range want {
			if !(math.Abs(float64(got[i]-want[i])) <= tol) {
				t.Fatalf("%+v on %dx%d: element %d is %v by Winograd, %v direct", *c, h2, w2, i, got[i], want[i])
			}
		}
	})
}
