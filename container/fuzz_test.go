package container

import (
	"bytes"
	"io"
	"testing"
)

func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	writeFile(f, onlyWriter{&buf}, true)
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:60])
	buf.Reset()
	writeFileWith(f, onlyWriter{&buf}, anamorphicHeader())
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:headerSize+aspectSize])
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		for range 1000 {
			if _, err := r.Next(); err != nil {
				break
			}
		}
		ReadIndex(bytes.NewReader(data))
	})
}

var _ = io.EOF
