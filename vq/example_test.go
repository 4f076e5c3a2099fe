package vq_test

import (
	"fmt"

	"github.com/lvc-codec/lvc/vq"
)

func Example() {
	// Pairs around (0, 0) and (10, 10): two entries serve them.
	vectors := []float32{0, 0.1, 0.1, 0, 10, 10.1, 9.9, 10, 0, -0.1, 10.1, 9.9}
	cb, stats, err := vq.Train(vectors, 2, vq.TrainOptions{Size: 2, Seed: 1})
	if err != nil {
		panic(err)
	}
	i, _ := cb.Nearest([]float32{9, 9})
	fmt.Printf("converged %v, (9, 9) → entry %d = %.2f\n", stats.Converged, i, cb.Entry(i))

	// A decoder gets indices and looks the vectors up.
	out := make([]float32, 4)
	if err := cb.Lookup(out, []int32{int32(i), int32(1 - i)}); err != nil {
		panic(err)
	}
	fmt.Printf("%.2f\n", out)
	fmt.Println(cb.Lookup(out[:2], []int32{7}))
	// Output:
	// converged true, (9, 9) → entry 1 = [10.00 10.00]
	// [10.00 10.00 0.03 0.00]
	// vq: index outside the codebook: index 7 at vector 0, codebook of 2
}
