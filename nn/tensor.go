// Package nn runs the codec's neural networks on the CPU: a float32 tensor
// type, an ONNX reader, a graph executor, and the kernels it uses (conv,
// depth-to-space, GDN, activations), with a portable pure-Go path and a
// faster amd64 path; a fixed-point executor (FixedGraph) for the networks
// the entropy decoder depends on, which must agree bit for bit everywhere;
// and input gradients for the encoder's latent refinement.
package nn

import "fmt"

// A Tensor is a dense float32 array in row-major order. Images are NCHW with
// N = 1.
type Tensor struct {
	Shape []int
	Data  []float32
}

// NewTensor allocates a zeroed tensor.
func NewTensor(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, numElements(shape))}
}

func numElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func (t *Tensor) String() string { return fmt.Sprintf("Tensor%v", t.Shape) }

// dims4 returns C, H, W of an NCHW tensor with N = 1.
func (t *Tensor) dims4() (c, h, w int, ok bool) {
	if len(t.Shape) != 4 || t.Shape[0] != 1 {
		return 0, 0, 0, false
	}
	return t.Shape[1], t.Shape[2], t.Shape[3], true
}
