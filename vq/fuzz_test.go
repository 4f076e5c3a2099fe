package vq

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzUnmarshalCodebook feeds arbitrary bytes to the parser. A codebook it
// accepts must marshal back to the same bytes, and looking up the indices
// the input's last bytes spell must give entries or ErrIndex.
func FuzzUnmarshalCodebook(f *testing.F) {
	cb, err := NewCodebook(3, []float32{0, 1, 2, -3, 4.5, 1e18})
	if err != nil {
		f.Fatal(err)
	}
	good, _ := cb.MarshalBinary()
	f.Add(good)
	f.Add(good[:headerSize])
	f.Add([]byte("LVCQ"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cb, err := UnmarshalCodebook(b)
		if err != nil {
			return
		}
		back, err := cb.MarshalBinary()
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("accepted codebook does not marshal back: %v", err)
		}
		indices := make([]int32, 0, 8)
		for _, x := range b[len(b)-min(len(b), 8):] {
			indices = append(indices, int32(int8(x)))
		}
		out := make([]float32, len(indices)*cb.Dim())
		if err := cb.Lookup(out, indices); err != nil && !errors.Is(err, ErrIndex) {
			t.Fatalf("Lookup: %v", err)
		}
		cb.Nearest(out[:cb.Dim()])
	})
}
