package nn

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the ONNX reader and compiler, and runs
// whatever loads on a small input: errors are fine, panics and runaway
// allocations are not.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("../testdata/nn/*.onnx")
	bad, _ := filepath.Glob("../testdata/nn/bad/*.onnx")
	files = append(files, bad...)
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil && len(b) < 8<<10 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Load(data)
		if err != nil {
			return
		}
		for _, c := range []int{1, 3, 4, 8, 12} {
			g.Run(NewTensor(1, c, 6, 5))
		}
		if fg, err := LoadFixed(data); err == nil {
			fg.Run(make([]int32, 4*3*3), 4, 3, 3)
		}
	})
}
