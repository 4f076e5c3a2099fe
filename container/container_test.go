package container

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"strings"
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

// writeFile writes the sample frames and returns the size the Writer reports.
func writeFile(t testing.TB, w io.Writer, index bool) int64 {
	h := sampleHeader()
	h.Indexed = index
	return writeFileWith(t, w, h)
}

// anamorphicHeader is sampleHeader with DVD's 16:9 pixel shape.
func anamorphicHeader() Header {
	h := sampleHeader()
	h.Indexed, h.PixelAspectNum, h.PixelAspectDen = true, 32, 27
	return h
}

func writeFileWith(t testing.TB, w io.Writer, h Header) int64 {
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
	return wr.Size()
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
		name   string
		index  bool
		seek   bool
		aspect bool
	}{{"seekable+index", true, true, false}, {"pipe+index", true, false, false}, {"pipe", false, false, false},
		{"seekable+index+aspect", true, true, true}, {"pipe+aspect", false, false, true}} {
		t.Run(c.name, func(t *testing.T) {
			wh := sampleHeader()
			if c.aspect {
				wh = anamorphicHeader()
			}
			wh.Indexed = c.index
			var data []byte
			var size int64
			if c.seek {
				f, err := os.CreateTemp(t.TempDir(), "x")
				if err != nil {
					t.Fatal(err)
				}
				size = writeFileWith(t, f, wh)
				f.Close()
				data, _ = os.ReadFile(f.Name())
			} else {
				var buf bytes.Buffer
				size = writeFileWith(t, onlyWriter{&buf}, wh)
				data = buf.Bytes()
			}
			if size != int64(len(data)) {
				t.Errorf("Size() is %d, the file %d bytes", size, len(data))
			}
			h, frames, err := readAll(data)
			if err != nil {
				t.Fatal(err)
			}
			wantCount := uint32(0)
			if c.seek {
				wantCount = 3
			}
			if h.Width != 768 || h.Height != 512 || h.ModelID[2] != 3 || h.FrameCount != wantCount ||
				h.PixelAspectNum != wh.PixelAspectNum || h.PixelAspectDen != wh.PixelAspectDen {
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
				if err != nil || len(idx) != 2 || idx[1].Frame != 2 || idx[0].Offset != wh.size() {
					t.Errorf("index %+v, %v", idx, err)
				}
			} else if err == nil {
				t.Error("index found in a file written without one")
			}
		})
	}
}

func TestEveryTruncationAndBitFlipIsAnError(t *testing.T) {
	plain := sampleHeader()
	plain.Indexed = true
	for _, h := range []Header{plain, anamorphicHeader()} {
		f, err := os.CreateTemp(t.TempDir(), "x")
		if err != nil {
			t.Fatal(err)
		}
		writeFileWith(t, f, h)
		f.Close()
		data, _ := os.ReadFile(f.Name())
		for cut := 0; cut < len(data); cut++ {
			if _, _, err := readAll(data[:cut]); err == nil {
				t.Fatalf("%+v: truncation at %d of %d bytes read without error", h, cut, len(data))
			}
		}
		for bit := 0; bit < 8*len(data); bit++ {
			c := append([]byte(nil), data...)
			c[bit/8] ^= 1 << (bit % 8)
			if _, _, err := readAll(c); err == nil {
				t.Fatalf("%+v: bit flip %d read without error", h, bit)
			}
		}
	}
}

// A zero term is refused even under a valid checksum: a writer that meant
// "not given" leaves the extension out.
func TestPixelAspectWithAZeroTermIsAnError(t *testing.T) {
	var buf bytes.Buffer
	writeFileWith(t, onlyWriter{&buf}, anamorphicHeader())
	le := binary.LittleEndian
	for _, c := range []struct {
		num, den uint32
		want     string
	}{{32, 0, "pixel aspect 32:0"}, {0, 0, "pixel aspect 0:0"}} {
		data := append([]byte(nil), buf.Bytes()...)
		le.PutUint32(data[headerSize:], c.num)
		le.PutUint32(data[headerSize+4:], c.den)
		le.PutUint32(data[headerSize+8:], crc32.Checksum(data[headerSize:headerSize+8], castagnoli))
		if _, _, err := readAll(data); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q named", err, c.want)
		}
	}
}

func TestWriterRejectsBadInput(t *testing.T) {
	for _, h := range []Header{
		{Width: 0, Height: 5, TimebaseNum: 1, TimebaseDen: 1},
		{Width: MaxDimension + 1, Height: 5, TimebaseNum: 1, TimebaseDen: 1},
		{Width: 5, Height: 5, TimebaseNum: 0, TimebaseDen: 1},
		{Width: 5, Height: 5, TimebaseNum: 1, TimebaseDen: 1, Color: 9},
		{Width: 5, Height: 5, TimebaseNum: 1, TimebaseDen: 1, PixelAspectNum: 4},
		{Width: 5, Height: 5, TimebaseNum: 1, TimebaseDen: 1, PixelAspectDen: 3},
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
	if err == nil {
		t.Fatal("forged size accepted")
	}
	if grew := after.total - before.total; grew > 8<<20 {
		t.Errorf("reading a forged size allocated %d bytes", grew)
	}
}

// frameRecord gives the offset of frame i's record in a file written
// without an index from sampleFrames.
func frameRecord(i int) int {
	at := headerSize
	for _, f := range sampleFrames()[:i] {
		at += 20 + 4*len(f.Streams)
		for _, st := range f.Streams {
			at += len(st)
		}
	}
	return at
}

func TestSizesThatWouldWrapAreErrors(t *testing.T) {
	var buf bytes.Buffer
	writeFile(t, &buf, false)
	le := binary.LittleEndian
	for _, sizes := range [][2]uint32{{0x80000000, 1}, {MaxFrameBytes / 2, MaxFrameBytes/2 + 1}, {0xffffffff, 0xffffffff}} {
		data := append([]byte(nil), buf.Bytes()...)
		le.PutUint32(data[headerSize+16:], sizes[0])
		le.PutUint32(data[headerSize+20:], sizes[1])
		_, _, err := readAll(data)
		if err == nil || !strings.Contains(err.Error(), "in all exceed") {
			t.Errorf("sizes %#x: %v", sizes, err)
		}
	}
}

func TestReaderSkipsAFrameWithABadChecksumOnly(t *testing.T) {
	var buf bytes.Buffer
	writeFile(t, &buf, false)
	data := buf.Bytes()
	data[frameRecord(1)+20+4*2]++ // frame 1's stream data
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if f, err := r.Next(); err != nil || f.PTS != 0 {
		t.Fatalf("frame 0: %v, %v", f, err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "frame 1") {
		t.Fatalf("frame 1: %v, want a checksum error", err)
	}
	if f, err := r.Next(); err != nil || f.PTS != 2 {
		t.Fatalf("frame 2 after the bad one: %v, %v", f, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}

	// A bad record magic leaves the reader lost: it stays at that error.
	data[frameRecord(1)] = 'X'
	r, _ = NewReader(bytes.NewReader(data))
	r.Next()
	_, first := r.Next()
	_, again := r.Next()
	if first == nil || first != again {
		t.Errorf("after a bad magic: %v, then %v; want the same error", first, again)
	}
}

func TestReaderRejectsFramesBeyondTheHeaderCount(t *testing.T) {
	var buf bytes.Buffer
	h := sampleHeader()
	h.FrameCount = 2
	w, err := NewWriter(onlyWriter{&buf}, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sampleFrames() {
		w.WriteFrame(f)
	}
	if err := w.Close(); err == nil {
		t.Error("a writer that cannot rewrite its header wrote 3 frames after promising 2 without error")
	}
	r, _ := NewReader(bytes.NewReader(buf.Bytes()))
	for i := range 2 {
		if _, err := r.Next(); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "more frames than the header's 2") {
		t.Errorf("third frame: %v", err)
	}
}

// appendOnly can seek but refuses WriteAt, as a file opened with O_APPEND does.
type appendOnly struct{ *os.File }

func (appendOnly) WriteAt([]byte, int64) (int, error) {
	return 0, errors.New("WriteAt on a file opened with O_APPEND")
}

func TestWriterRewritesTheHeaderOnlyWhereItCan(t *testing.T) {
	// A stream that starts 5 bytes into a file gets its count there.
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("hello"))
	writeFile(t, f, false)
	f.Close()
	data, _ := os.ReadFile(f.Name())
	if string(data[:5]) != "hello" {
		t.Fatalf("the bytes before the stream were overwritten: %q", data[:5])
	}
	if h, frames, err := readAll(data[5:]); err != nil || h.FrameCount != 3 || len(frames) != 3 {
		t.Errorf("stream after an offset: count %d, %d frames, %v", h.FrameCount, len(frames), err)
	}

	// Where the header cannot be rewritten, an unknown count stays 0 and
	// Close succeeds.
	g, err := os.CreateTemp(t.TempDir(), "y")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, w := range []io.Writer{onlyWriter{&bytes.Buffer{}}, appendOnly{g}} {
		wr, err := NewWriter(w, sampleHeader())
		if err != nil {
			t.Fatal(err)
		}
		wr.WriteFrame(sampleFrames()[0])
		if err := wr.Close(); err != nil {
			t.Errorf("%T: %v", w, err)
		}
	}
}
