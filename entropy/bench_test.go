package entropy

import (
	"fmt"
	"testing"
)

// The workload spreads scales over the whole table, as a hyperprior's latents
// do; bytes/s counts compressed bytes.
func BenchmarkDecode(b *testing.B) {
	for _, p := range []int{12, 16} {
		b.Run(fmt.Sprintf("precision=%d", p), func(b *testing.B) {
			ts := gaussianSet(b, p)
			vals, idx := sampleWorkload(ts, 1<<16, 1)
			var e Encoder
			buf, _ := e.Encode(nil, vals, idx, ts)
			out := make([]int32, len(vals))
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if err := Decode(buf, out, idx, ts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*float64(len(vals))/b.Elapsed().Seconds()/1e6, "Msym/s")
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	ts := gaussianSet(b, 16)
	vals, idx := sampleWorkload(ts, 1<<16, 1)
	var e Encoder
	buf, _ := e.Encode(nil, vals, idx, ts)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		buf, _ = e.Encode(buf[:0], vals, idx, ts)
	}
	b.ReportMetric(float64(b.N)*float64(len(vals))/b.Elapsed().Seconds()/1e6, "Msym/s")
}
