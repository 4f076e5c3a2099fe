package nn

import (
	"fmt"
	"testing"
)

// convGraph builds a one-conv graph without going through ONNX.
func benchConv(b *testing.B, k, ch, h, w int, kern func(int, []float32, []float32, *[mr * nr]float32)) {
	wt := NewTensor(ch, ch, k, k)
	for i := range wt.Data {
		wt.Data[i] = float32(i%17-8) * 0.01
	}
	c, err := newConv(onnxNode{attrs: map[string]attribute{"pads": {ints: []int64{int64(k / 2), int64(k / 2), int64(k / 2), int64(k / 2)}}}},
		[]*Tensor{nil, wt, NewTensor(ch)})
	if err != nil {
		b.Fatal(err)
	}
	x := NewTensor(1, ch, h, w)
	for i := range x.Data {
		x.Data[i] = float32(i % 7)
	}
	saved := kernel
	kernel = kern
	defer func() { kernel = saved }()
	var pool bufferPool
	b.ResetTimer()
	for range b.N {
		out, err := c.run([]*Tensor{x}, &pool)
		if err != nil {
			b.Fatal(err)
		}
		pool.put(out)
	}
	flops := 2.0 * float64(ch*ch*k*k*h*w)
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkConv is the yardstick: 128->128 channels at 256x384.
func BenchmarkConv(b *testing.B) {
	for _, k := range []int{3, 5} {
		b.Run(fmt.Sprintf("%dx%d/fast", k, k), func(b *testing.B) { benchConv(b, k, 128, 256, 384, kernel) })
		b.Run(fmt.Sprintf("%dx%d/portable", k, k), func(b *testing.B) { benchConv(b, k, 128, 256, 384, kernelGo) })
	}
}
