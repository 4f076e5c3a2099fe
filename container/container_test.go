package container

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

func sampleHeader() Header {
	return Header{ModelID: [16]byte{1, 2, 3}, Width: 768, Height: 512, Color: RGB, TimebaseNum: 1, TimebaseDen: 25}
}

func sampleFrames() []*Frame {
	return []*Frame{
		{Type: Intra, Quality: 4 << 8, PTS: 0, Streams: [][]byte{[]byte("zz"), bytes.Repeat([]byte{7}, 300)}},
		{Type: Inter, Quality: 3<<8 | 128, PTS: 1, Streams: [][]byte{{}, []byte("y")}},
		{Type: Intra, Quality: 0, PTS: 2, Streams: [][]byte{[]byte("abc")}},
	}
}

func writeFile(t testing.TB, w io.Writer, index bool) {
	h := sampleHeader()
	h.Indexed = index
	wr, err := NewWriter(w, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sampleFrames() {
		if err := wr.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
}

func readAll(data []byte) (Header, []*Frame, error) {
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return Header{}, nil, err
	}
	var frames []*Frame
	for {
		f, err := r.Next()
		if err == io.EOF {
			return r.Header(), frames, nil
		}
		if err != nil {
			return r.Header(), frames, err
		}
		frames = append(frames, f)
	}
}

// onlyWriter hides Seek, as a pipe would.
type onlyWriter struct{ io.Writer }

func TestRoundTripSeekableAndStreaming(t *testing.T) {
	for _, c := range []struct {
		name  string
		index bool
		seek  bool
	}{{"seekable+index", true, true}, {"pipe+index", true, false}, {"pipe", false, false}} {
		t.Run(c.name, func(t *testing.T) {
			var data []byte
			if c.seek {
				f, err := os.CreateTemp(t.TempDir(), "x")
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, f, c.index)
				f.Close()
				data, _ = os.ReadFile(f.Name())
			} else {
				var buf bytes.Buffer
				writeFile(t, onlyWriter{&buf}, c.index)
				data = buf.Bytes()
			}
			h, frames, err := readAll(data)
			if err != nil {
				t.Fatal(err)
			}
			wantCount := uint32(0)
			if c.seek {
				wantCount = 3
			}
			if h.Width != 768 || h.Height != 512 || h.ModelID[2] != 3 || h.FrameCount != wantCount {
				t.Errorf("header %+v", h)
			}
			want := sampleFrames()
			if len(frames) != len(want) {
				t.Fatalf("%d frames, want %d", len(frames), len(want))
			}
			for i, f := range frames {
				if f.Type != want[i].Type || f.Quality != want[i].Quality || f.PTS != want[i].PTS || len(f.Streams) != len(want[i].Streams) {
					t.Errorf("frame %d: %+v", i, f)
				}
				for j := range f.Streams {
					if !bytes.Equal(f.Streams[j], want[i].Streams[j]) {
						t.Errorf("frame %d stream %d differs", i, j)
					}
				}
			}
			idx, err := ReadIndex(bytes.NewReader(data))
			if c.index {
				if err != nil || len(idx) != 2 || idx[1].Frame != 2 || idx[0].Offset != headerSize {
					t.Errorf("index %+v, %v", idx, err)
				}
			} else if err == nil {
				t.Error("index found in a file written without one")
			}
		})
	}
}

func TestEveryTruncationAndBitFlipIsAnError(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f, true)
	f.Close()
	data, _ := os.ReadFile(f.Name())
	for cut := 0; cut < len(data); cut++ {
		if _, _, err := readAll(data[:cut]); err == nil {
			t.Fatalf("truncation at %d of %d bytes read without error", cut, len(data))
		}
	}
	for bit := 0; bit < 8*len(data); bit++ {
		c := append([]byte(nil), data...)
		c[bit/8] ^= 1 << (bit % 8)
		if _, _, err := readAll(c); err == nil {
			t.Fatalf("bit flip %d read without error", bit)
		}
	}
}

func TestWriterRejectsBadInput(t *testing.T) {
	for _, h := range []Header{
		{Width: 0, Height: 5, TimebaseNum: 1, TimebaseDen: 1},
		{Width: MaxDimension + 1, Height: 5, TimebaseNum: 1, TimebaseDen: 1},
		{Width: 5, Height: 5, TimebaseNum: 0, TimebaseDen: 1},
		{Width: 5, Height: 5, TimebaseNum: 1, TimebaseDen: 1, Color: 9},
	} {
		if _, err := NewWriter(io.Discard, h); err == nil {
			t.Errorf("header %+v accepted", h)
		}
	}
	w, _ := NewWriter(io.Discard, sampleHeader())
	if err := w.WriteFrame(&Frame{}); err == nil {
		t.Error("frame without sub-streams accepted")
	}
	if err := w.WriteFrame(&Frame{Type: 7, Streams: [][]byte{{1}}}); err == nil {
		t.Error("unknown frame type accepted")
	}
}

func TestForgedSizeDoesNotAllocate(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, sampleHeader())
	w.WriteFrame(&Frame{Streams: [][]byte{[]byte("abcd")}})
	data := buf.Bytes()
	// Claim a 256 MiB sub-stream in a file of a few bytes.
	data[headerSize+16], data[headerSize+17], data[headerSize+18], data[headerSize+19] = 0, 0, 0, 0x10
	var before, after runtimeMem
	before.read()
	_, _, err := readAll(data)
	after.read()
	if err == nil || !errors.Is(err, err) {
		t.Fatal("forged size accepted")
	}
	if grew := after.total - before.total; grew > 8<<20 {
		t.Errorf("reading a forged size allocated %d bytes", grew)
	}
}
