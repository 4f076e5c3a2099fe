package codec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/lvc-codec/lvc/nn"
)

// Latent refinement (Options.RefineSteps) spends encoding time for fewer
// bits at the same quality, with no change to the format or the decoder:
// the analysis transform's y is only a starting point, and gradient descent
// on the frame's own rate-distortion cost, through the synthesis transform,
// finds latents that decode better for what they cost (Campos et al. 2019,
// Yang et al. 2020). The hyperprior (z, so the means and scales) stays as
// the analysis chose it. With a checkerboard context, each step prices and
// rounds the second-pass latents under the means and scales the context
// derives from the current anchors, as the encoder will code them; the
// rate's gradient through the context into the anchors is left out.
//
// The cost is the one the model was trained on: λ·255²·MSE + bits per
// pixel, with λ of the frame's quality. The distortion's gradient goes
// through the rounded latents the decoder will see (straight-through); the
// rate's is that of y plus uniform noise under each latent's Gaussian, as
// in training. Adam with a step decaying linearly from 0.005: in PyTorch
// (train/refine.py, Kodak 1-2) 40 steps saved 6.4%, 80 steps only 3.5%, and larger steps
// traded PSNR away at the low qualities. At the high ones, where the
// distortion dominates the cost, they pay: the first step grows in
// proportion to λ above refineKneeLambda (a first step of 0.037 at
// hp64u11's top quality gave it +0.42 dB over 0.005 for 3% more bits,
// estimated on Kodak 1-2).
//
// The encoder codes the cheapest iterate, the analysis's own latents
// included, by an estimate of what the file will cost: the distortion of the
// 8-bit RGB pixels the synthesis gives, the rate of the rounded latents under
// the Gaussians (the model's fitted tables only approximate them). So a step
// too long for some model, or a descent that diverges, falls back to an
// earlier iterate.
const (
	refineKneeLambda = 0.0625
	// MaxRefineSteps bounds Options.RefineSteps; each step costs about three
	// and a half synthesis runs.
	MaxRefineSteps = 1000
	// refineChunk latents share one noise stream and one goroutine.
	refineChunk = 1 << 15
)

// refineLearningRate is the first step below the knee; a variable so that
// a test can make every step overshoot.
var refineLearningRate = 0.005

// refineFirstStep is Adam's step size at the first refinement step for a
// frame coded at trade-off λ.
func refineFirstStep(lambda float64) float64 {
	return refineLearningRate * max(1, lambda/refineKneeLambda)
}

// lambdaAt is the rate-distortion trade-off the model was trained with at
// quality q256, geometric between learned qualities like the gains.
func (m *Model) lambdaAt(q256 uint16) float64 {
	l := m.Info.Lambdas
	lo := int(q256 >> 8)
	if lo >= len(l)-1 {
		return l[len(l)-1]
	}
	t := float64(q256&255) / 256
	return math.Exp((1-t)*math.Log(l[lo]) + t*math.Log(l[lo+1]))
}

// refineLatents moves y (after the encoder gains) towards a lower
// rate-distortion cost for the image x ([1,3,H,W], padded; the w×h top-left
// area counts) under the means and scales (fixed point) and scale-table
// indices the hyperprior gives.
func (m *Model) refineLatents(y []float32, x *nn.Tensor, w, h int, means, scales []int32, tables []uint16, q256 uint16, steps int) error {
	if len(m.Info.Lambdas) != m.Info.Qualities {
		return fmt.Errorf("codec: refinement needs the model's %d λ values, META has %d", m.Info.Qualities, len(m.Info.Lambdas))
	}
	if m.Info.Family != "gaussian" { // bitsSlope prices rates under a Gaussian only
		return fmt.Errorf("codec: refinement supports Gaussian models, not family %q", m.Info.Family)
	}
	for _, l := range m.Info.Lambdas {
		if !(l > 0 && l < 1e6) {
			return fmt.Errorf("codec: refinement: META λ %v out of range", l)
		}
	}
	for _, s := range m.Info.Scales {
		if !(s > 0 && s < 1e6) {
			return fmt.Errorf("codec: refinement: META scale %v out of range", s)
		}
	}
	if m.gSGrad == nil {
		g, err := nn.LoadDifferentiable(m.gSONNX)
		if err != nil {
			return fmt.Errorf("codec: refinement: %w", err)
		}
		m.gSGrad = g
	}
	// The recorded activations are several times a decode's memory: let
	// them go once the frame is refined.
	defer m.gSGrad.ReleaseBuffers()
	ph, pw := x.Shape[2], x.Shape[3]
	yh, yw := ph/16, pw/16
	plane := yh * yw
	gd := gain(m.gainDec, q256)
	inputs := map[string]*nn.Tensor{}
	for i, s := range layerScalers(m.scalersS, m.widthsS, q256) {
		inputs[scalerInput(i)] = &nn.Tensor{Shape: []int{1, len(s), 1, 1}, Data: s}
	}
	mean := make([]float64, len(y))
	sigma := make([]float64, len(y))
	for i := range y {
		mean[i] = float64(means[i]) / (1 << nn.FixedFracBits)
		sigma[i] = m.Info.Scales[tables[i]]
	}
	context := m.refineContext(means, scales, tables, yw, yh)
	lambda := m.lambdaAt(q256)
	firstStep := refineFirstStep(lambda)
	distortionWeight := float32(lambda * 255 * 255 * 2 / float64(3*w*h))
	rateWeight := 1 / float64(w*h)
	yHat := nn.NewTensor(1, m.Info.M, yh, yw)
	gradOut := nn.NewTensor(1, 3, ph, pw)
	first, second := make([]float64, len(y)), make([]float64, len(y))
	const beta1, beta2 = 0.9, 0.999
	// Each iterate is priced from the forward pass its step runs anyway, and
	// one more pass prices the last.
	bestCost, bestY := math.Inf(1), slices.Clone(y)
	for step := 0; ; step++ {
		if err := context(y, mean, sigma); err != nil {
			return err
		}
		for i, v := range y {
			mu := mean[i]
			yHat.Data[i] = float32(math.Round(float64(v)-mu)+mu) * gd[i/plane]
		}
		inputs["x"] = yHat
		tape, err := m.gSGrad.Record(inputs)
		if err != nil {
			return fmt.Errorf("codec: refinement: synthesis: %w", err)
		}
		out := tape.Output(0)
		if len(out.Data) != len(gradOut.Data) {
			return fmt.Errorf("codec: refinement: synthesis gives %v", out.Shape)
		}
		var sse float64
		for c := range 3 {
			for r := range h {
				row := (c*ph + r) * pw
				for i := row; i < row+w; i++ {
					d := out.Data[i] - x.Data[i]
					gradOut.Data[i] = distortionWeight * d
					// The cost is that of 8-bit pixels, as the decoder writes RGB.
					e := math.Round(min(max(float64(out.Data[i]), 0), 1)*255)/255 - float64(x.Data[i])
					sse += e * e
				}
			}
		}
		if cost := float64(distortionWeight)/2*sse + rateWeight*roundedBits(y, mean, sigma); cost < bestCost {
			bestCost = cost
			copy(bestY, y)
		}
		if step == steps {
			copy(y, bestY)
			return nil
		}
		grad, err := tape.Backward("x", gradOut)
		if err != nil {
			return fmt.Errorf("codec: refinement: %w", err)
		}
		lr := firstStep * (1 - float64(step)/float64(steps))
		c1, c2 := 1-math.Pow(beta1, float64(step+1)), 1-math.Pow(beta2, float64(step+1))
		// Fixed chunks, each with its own noise stream: the file does not
		// depend on the number of cores.
		var wg sync.WaitGroup
		for lo := 0; lo < len(y); lo += refineChunk {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(step), uint64(lo)))
				for i := lo; i < min(lo+refineChunk, len(y)); i++ {
					v := y[i]
					noisy := float64(v) + rng.Float64() - 0.5 - mean[i]
					g := float64(grad.Data[i])*float64(gd[i/plane]) + rateWeight*bitsSlope(noisy, sigma[i])
					first[i] = beta1*first[i] + (1-beta1)*g
					second[i] = beta2*second[i] + (1-beta2)*g*g
					y[i] = float32(float64(v) - lr*(first[i]/c1)/(math.Sqrt(second[i]/c2)+1e-8))
				}
			}()
		}
		wg.Wait()
	}
}

// gaussianBin is the probability of the unit bin around a ≥ 0 under a
// zero-mean Gaussian of scale sigma, and its edges in units of sigma.
func gaussianBin(a, sigma float64) (p, upper, lower float64) {
	upper, lower = (0.5-a)/sigma, (-0.5-a)/sigma
	return 0.5*math.Erfc(-upper/math.Sqrt2) - 0.5*math.Erfc(-lower/math.Sqrt2), upper, lower
}

// roundedBits estimates the bits of y rounded around its means, under
// Gaussians of scales sigma, with the likelihood bound of bitsSlope.
func roundedBits(y []float32, mean, sigma []float64) float64 {
	var bits float64
	for i, v := range y {
		p, _, _ := gaussianBin(math.Abs(math.Round(float64(v)-mean[i])), sigma[i])
		bits -= math.Log2(max(p, 1e-9))
	}
	return bits
}

// refineContext returns what updates, before each refinement step, the
// means and scales of the latents coded after the first pass from those
// before them in y; it does nothing for a model without a checkerboard
// context.
func (m *Model) refineContext(means, scales []int32, tables []uint16, yw, yh int) func(y []float32, mean, sigma []float64) error {
	if m.ctx == nil {
		return func([]float32, []float64, []float64) error { return nil }
	}
	_, passes := m.contextPasses(yw, yh)
	plane := yw * yh
	elements := make([][]int32, len(passes))
	for k, pass := range passes {
		elements[k] = inEveryChannel(pass.targets, m.Info.M, plane, nil)
	}
	sym := make([]int32, len(means))
	corrected := make([]int64, len(means))
	tab := make([]uint16, len(tables))
	return func(y []float32, mean, sigma []float64) error {
		for i, v := range y {
			corrected[i] = int64(means[i])
			sym[i] = symbolAround(v, corrected[i])
		}
		copy(tab, tables)
		for k, pass := range passes {
			if err := m.applyContext(pass, sym, corrected, scales, tab, yw, yh, nil); err != nil {
				return fmt.Errorf("codec: refinement: %w", err)
			}
			for _, i := range elements[k] {
				// The pass's symbols around its corrected means, as the
				// encoder will take them and later passes will read them.
				sym[i] = symbolAround(y[i], corrected[i])
				mean[i] = float64(corrected[i]) / (1 << nn.FixedFracBits)
				sigma[i] = m.Info.Scales[tab[i]]
			}
		}
		return nil
	}
}

// bitsSlope is d/dr of −log2 P(r), P the mass of a unit bin centred on r
// under a zero-mean Gaussian of scale sigma. Where P is below 1e-9 (the
// training's bound) the slope is 0, as the bound's was.
func bitsSlope(r, sigma float64) float64 {
	p, upper, lower := gaussianBin(math.Abs(r), sigma)
	if p < 1e-9 {
		return 0
	}
	density := func(t float64) float64 { return math.Exp(-t*t/2) / math.Sqrt(2*math.Pi) }
	// dP/da = (−φ(upper) + φ(lower)) / sigma; bits = −log2 P.
	slope := -(-density(upper) + density(lower)) / sigma / (p * math.Ln2)
	if r < 0 {
		return -slope
	}
	return slope
}
