package vq

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// TrainOptions configure Train.
type TrainOptions struct {
	Size int // entries of the codebook
	// MaxIterations bounds the Lloyd iterations after seeding; 0 means 50.
	MaxIterations int
	Seed          uint64
}

// TrainStats describe a finished training.
type TrainStats struct {
	Iterations int     // Lloyd iterations run
	Converged  bool    // the last iteration moved no vector to another entry
	MSE        float64 // mean squared error per value under the returned codebook
}

// chunk is the unit of parallel assignment. Each vector's entry depends on
// nothing else and the centroid sums run in one fixed order, so a training
// gives the same codebook on any number of cores.
const chunk = 4096

// Train fits a codebook of opts.Size entries to the consecutive dim-vectors
// of vectors by k-means: k-means++ seeding (Arthur and Vassilvitskii 2007)
// from opts.Seed, then Lloyd iterations until no vector changes entry. An
// entry left without vectors moves to the vector worst served.
func Train(vectors []float32, dim int, opts TrainOptions) (*Codebook, TrainStats, error) {
	if dim < 1 || dim > MaxDim {
		return nil, TrainStats{}, fmt.Errorf("vq: vector length %d outside 1..%d", dim, MaxDim)
	}
	if len(vectors)%dim != 0 {
		return nil, TrainStats{}, fmt.Errorf("vq: %d values are not a whole number of %d-vectors", len(vectors), dim)
	}
	n := len(vectors) / dim
	if opts.Size < 1 || opts.Size > MaxSize {
		return nil, TrainStats{}, fmt.Errorf("vq: codebook size %d outside 1..%d", opts.Size, MaxSize)
	}
	if n < opts.Size {
		return nil, TrainStats{}, fmt.Errorf("vq: %d training vectors for %d entries", n, opts.Size)
	}
	for i, v := range vectors {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, TrainStats{}, fmt.Errorf("vq: training vector %d holds %v", i/dim, v)
		}
	}
	maxIter := opts.MaxIterations
	if maxIter <= 0 {
		maxIter = 50
	}
	entries := seed(vectors, dim, opts.Size, rand.New(rand.NewPCG(opts.Seed, 0x6c7663)))
	assign := make([]int32, n)
	for i := range assign {
		assign[i] = -1
	}
	dist := make([]float32, n)
	var stats TrainStats
	for stats.Iterations < maxIter {
		cb, err := NewCodebook(dim, entries)
		if err != nil {
			return nil, stats, err
		}
		stats.Iterations++
		if changed := assignAll(cb, vectors, assign, dist); changed == 0 {
			stats.Converged = true
			break
		}
		entries = centroids(vectors, dim, opts.Size, assign, dist)
	}
	cb, err := NewCodebook(dim, entries)
	if err != nil {
		return nil, stats, err
	}
	sse, _ := cb.Quantize(assign, vectors)
	stats.MSE = sse / float64(len(vectors))
	return cb, stats, nil
}

// seed picks size training vectors as initial entries: the first uniformly,
// each next one with probability proportional to its squared distance to
// the nearest entry picked so far.
func seed(vectors []float32, dim, size int, rng *rand.Rand) []float32 {
	n := len(vectors) / dim
	entries := make([]float32, 0, size*dim)
	minDist := make([]float64, n)
	for i := range minDist {
		minDist[i] = math.Inf(1)
	}
	pick := rng.IntN(n)
	for {
		e := vectors[pick*dim : (pick+1)*dim]
		entries = append(entries, e...)
		if len(entries) == size*dim {
			return entries
		}
		var total float64
		for i := range minDist {
			if d := float64(sqDist(vectors[i*dim:(i+1)*dim], e)); d < minDist[i] {
				minDist[i] = d
			}
			total += minDist[i]
		}
		if !(total > 0) {
			// Every vector equals an entry already: repeat them.
			pick = rng.IntN(n)
			continue
		}
		target := rng.Float64() * total
		pick = n - 1
		for i, d := range minDist {
			if target -= d; target < 0 && d > 0 {
				pick = i
				break
			}
		}
	}
}

// assignAll moves every vector to its nearest entry, records the squared
// distance, and returns how many vectors changed entry.
func assignAll(cb *Codebook, vectors []float32, assign []int32, dist []float32) int {
	dim, n := cb.Dim(), len(assign)
	chunks := (n + chunk - 1) / chunk
	changed := make([]int, chunks)
	var wg sync.WaitGroup
	next := make(chan int, chunks)
	for c := range chunks {
		next <- c
	}
	close(next)
	for range min(runtime.GOMAXPROCS(0), chunks) {
		wg.Go(func() {
			for c := range next {
				for k := c * chunk; k < min(n, (c+1)*chunk); k++ {
					i, d := cb.Nearest(vectors[k*dim : (k+1)*dim])
					if int32(i) != assign[k] {
						assign[k] = int32(i)
						changed[c]++
					}
					dist[k] = d
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, c := range changed {
		total += c
	}
	return total
}

// centroids returns each entry's mean of the vectors assigned to it. An
// entry with none takes the vector farthest from its own entry (the lowest
// index among equals), which then counts as served, so the next empty entry
// takes another.
func centroids(vectors []float32, dim, size int, assign []int32, dist []float32) []float32 {
	sums := make([]float64, size*dim)
	counts := make([]int, size)
	for k, a := range assign {
		counts[a]++
		s := sums[int(a)*dim : (int(a)+1)*dim]
		for j, x := range vectors[k*dim : (k+1)*dim] {
			s[j] += float64(x)
		}
	}
	entries := make([]float32, size*dim)
	for i, c := range counts {
		e := entries[i*dim : (i+1)*dim]
		if c > 0 {
			for j, s := range sums[i*dim : (i+1)*dim] {
				e[j] = float32(s / float64(c))
			}
			continue
		}
		worst := 0
		for k, d := range dist {
			if d > dist[worst] {
				worst = k
			}
		}
		copy(e, vectors[worst*dim:(worst+1)*dim])
		dist[worst] = 0
	}
	return entries
}
