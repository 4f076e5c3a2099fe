package codec

import (
	"bytes"
	"testing"
)

// FuzzDecode runs the whole decoder (container, entropy decoding, hyper-
// synthesis, synthesis) on arbitrary bytes.
func FuzzDecode(f *testing.F) {
	m := tinyModel(f)
	f.Add(encode(f, m, testImage(70, 40), 3))
	f.Add(encode(f, m, testImage(5, 5), 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		DecodeImage(bytes.NewReader(data), m)
	})
}

func FuzzLoadModel(f *testing.F) {
	f.Add(mustRead(f, "../testdata/tiny.lvcm"))
	f.Fuzz(func(t *testing.T, data []byte) {
		LoadModel(data)
	})
}
