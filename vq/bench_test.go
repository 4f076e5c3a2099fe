package vq

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkNearest searches a 256-entry codebook of 8-vectors, the shape of
// one channel group of a latent position.
func BenchmarkNearest(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	cb, err := NewCodebook(8, randomValues(rng, 256*8))
	if err != nil {
		b.Fatal(err)
	}
	vectors := randomValues(rng, 1024*8)
	indices := make([]int32, 1024)
	b.SetBytes(int64(len(vectors) * 4))
	for b.Loop() {
		cb.Quantize(indices, vectors)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(indices)), "ns/vector")
}

// BenchmarkTrain fits 256 entries to 20,000 8-vectors.
func BenchmarkTrain(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	vectors := randomValues(rng, 20000*8)
	for b.Loop() {
		if _, _, err := Train(vectors, 8, TrainOptions{Size: 256, MaxIterations: 10, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
