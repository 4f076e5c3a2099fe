// Package container reads and writes the .lvc file format: a header, a
// sequence of frame records each holding sub-streams of coded bits, and an
// optional seek index of the intra frames. docs/FORMAT.md specifies it.
//
// Every size is checked against fixed limits before anything is allocated,
// and every header and frame carries a CRC-32C.
package container

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

const (
	Version = 1
	// MaxDimension bounds width and height.
	MaxDimension = 1 << 14
	// MaxStreams bounds the sub-streams of one frame.
	MaxStreams = 8
	// MaxFrameBytes bounds one frame's payload.
	MaxFrameBytes = 1 << 28
	// MaxIndexEntries bounds the seek index.
	MaxIndexEntries = 1 << 20

	headerSize  = 48
	aspectSize  = 12 // the pixel-aspect extension after the header
	trailerSize = 12
)

var (
	fileMagic    = [4]byte{'L', 'V', 'C', 'F'}
	frameMagic   = [4]byte{'L', 'V', 'F', 'R'}
	indexMagic   = [4]byte{'L', 'V', 'I', 'X'}
	trailerMagic = [4]byte{'L', 'V', 'I', 'E'}
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
)

// ColorFormat says how decoded frames are presented.
type ColorFormat uint8

const (
	RGB  ColorFormat = 0
	Gray ColorFormat = 1
)

// FrameType says how a frame is coded.
type FrameType uint8

const (
	Intra FrameType = 0 // coded on its own
	Inter FrameType = 1 // entropy model conditioned on the previous frame
	VQ    FrameType = 2 // vector-quantized latents
)

func (t FrameType) String() string {
	switch t {
	case Intra:
		return "intra"
	case Inter:
		return "inter"
	case VQ:
		return "vq"
	}
	return fmt.Sprintf("FrameType(%d)", uint8(t))
}

// Header describes a whole file.
type Header struct {
	ModelID     [16]byte
	Width       int
	Height      int
	Color       ColorFormat
	TimebaseNum uint32 // a tick lasts TimebaseNum/TimebaseDen seconds
	TimebaseDen uint32
	FrameCount  uint32 // 0 when unknown
	// Indexed promises a seek index at the end, so that a file cut just
	// before it is detected as truncated.
	Indexed bool
	// PixelAspectNum:PixelAspectDen is the shape of a pixel, width to
	// height, as Y4M's A tag and H.264's sample aspect ratio give it: 32:27
	// for 720x480 shown at 16:9. Both 0 when the source did not say, which
	// players take as square.
	PixelAspectNum, PixelAspectDen uint32
}

const (
	flagIndexed     = 1
	flagPixelAspect = 2
)

func (h *Header) validate() error {
	if h.Width < 1 || h.Height < 1 || h.Width > MaxDimension || h.Height > MaxDimension {
		return fmt.Errorf("container: dimensions %dx%d outside 1..%d", h.Width, h.Height, MaxDimension)
	}
	if h.Color > Gray {
		return fmt.Errorf("container: unknown color format %d", h.Color)
	}
	if h.TimebaseNum == 0 || h.TimebaseDen == 0 {
		return errors.New("container: timebase has a zero term")
	}
	if (h.PixelAspectNum == 0) != (h.PixelAspectDen == 0) {
		return fmt.Errorf("container: pixel aspect %d:%d has one zero term (both 0: not given)", h.PixelAspectNum, h.PixelAspectDen)
	}
	return nil
}

func (h *Header) flags() byte {
	var f byte
	if h.Indexed {
		f |= flagIndexed
	}
	if h.PixelAspectNum != 0 {
		f |= flagPixelAspect
	}
	return f
}

// headerLength is the length in the file of a header with these flags, its
// extension included: where the first frame record begins.
func headerLength(flags byte) int64 {
	if flags&flagPixelAspect != 0 {
		return headerSize + aspectSize
	}
	return headerSize
}

func (h *Header) size() int64 { return headerLength(h.flags()) }

func (h *Header) marshal() []byte {
	b := make([]byte, headerSize, h.size())
	copy(b, fileMagic[:])
	b[4] = Version
	b[5] = byte(h.Color)
	b[6] = h.flags()
	copy(b[8:24], h.ModelID[:])
	le := binary.LittleEndian
	le.PutUint32(b[24:], uint32(h.Width))
	le.PutUint32(b[28:], uint32(h.Height))
	le.PutUint32(b[32:], h.TimebaseNum)
	le.PutUint32(b[36:], h.TimebaseDen)
	le.PutUint32(b[40:], h.FrameCount)
	le.PutUint32(b[44:], crc32.Checksum(b[:44], castagnoli))
	if b[6]&flagPixelAspect != 0 {
		ext := le.AppendUint32(le.AppendUint32(nil, h.PixelAspectNum), h.PixelAspectDen)
		b = le.AppendUint32(append(b, ext...), crc32.Checksum(ext, castagnoli))
	}
	return b
}

func parseHeader(b []byte) (Header, error) {
	var h Header
	if !bytes.Equal(b[:4], fileMagic[:]) {
		return h, errors.New("container: not an lvc file (bad magic)")
	}
	le := binary.LittleEndian
	if crc32.Checksum(b[:44], castagnoli) != le.Uint32(b[44:]) {
		return h, errors.New("container: header checksum mismatch (corrupt file)")
	}
	if b[4] != Version {
		return h, fmt.Errorf("container: format version %d, this decoder reads %d", b[4], Version)
	}
	if b[6]&^(flagIndexed|flagPixelAspect) != 0 || b[7] != 0 {
		return h, fmt.Errorf("container: header flags %#02x, reserved %#02x: bits this decoder does not know (a newer lvc's file?)", b[6], b[7])
	}
	h.Indexed = b[6]&flagIndexed != 0
	h.Color = ColorFormat(b[5])
	copy(h.ModelID[:], b[8:24])
	w, ht := le.Uint32(b[24:]), le.Uint32(b[28:])
	if w > MaxDimension || ht > MaxDimension {
		return h, fmt.Errorf("container: dimensions %dx%d outside 1..%d", w, ht, MaxDimension)
	}
	h.Width, h.Height = int(w), int(ht)
	h.TimebaseNum, h.TimebaseDen = le.Uint32(b[32:]), le.Uint32(b[36:])
	h.FrameCount = le.Uint32(b[40:])
	return h, h.validate()
}

// Frame is one coded frame.
type Frame struct {
	Type    FrameType
	Quality uint16 // quality index in 1/256 steps
	PTS     int64  // presentation time in timebase ticks
	Streams [][]byte
}

// IndexEntry locates one intra frame.
type IndexEntry struct {
	Frame  uint32 // position in the file's frame sequence, from 0
	PTS    int64
	Offset int64 // of the frame record, from the start of the file
}

// A Writer writes a file frame by frame to any io.Writer. If the io.Writer
// can also seek and write at an offset (a regular file), Close rewrites the
// header with the frame count.
type Writer struct {
	w      io.Writer
	h      Header
	offset int64
	frames uint32
	index  []IndexEntry
	err    error
	// rewrite, if not nil, writes the header again at start, where the
	// stream began in the underlying file.
	rewrite io.WriterAt
	start   int64
}

// NewWriter writes the header. Set h.FrameCount if it is known up front,
// and h.Indexed to end the file with a seek index.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	wr := &Writer{w: w, h: h}
	// A pipe cannot seek, and a file opened for appending refuses WriteAt:
	// both keep the header as first written.
	if wa, ok := w.(io.WriterAt); ok {
		if s, ok := w.(io.Seeker); ok {
			if at, err := s.Seek(0, io.SeekCurrent); err == nil {
				wr.rewrite, wr.start = wa, at
			}
		}
	}
	wr.write(h.marshal())
	return wr, wr.err
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.offset += int64(n)
	w.err = err
}

// WriteFrame appends one frame record.
func (w *Writer) WriteFrame(f *Frame) error {
	if len(f.Streams) == 0 || len(f.Streams) > MaxStreams {
		return fmt.Errorf("container: %d sub-streams, want 1..%d", len(f.Streams), MaxStreams)
	}
	if f.Type > VQ {
		return fmt.Errorf("container: unknown frame type %d", f.Type)
	}
	total := 0
	for _, s := range f.Streams {
		total += len(s)
	}
	if total > MaxFrameBytes {
		return fmt.Errorf("container: frame of %d bytes exceeds %d", total, MaxFrameBytes)
	}
	if f.Type == Intra && len(w.index) < MaxIndexEntries {
		w.index = append(w.index, IndexEntry{Frame: w.frames, PTS: f.PTS, Offset: w.offset})
	}
	rec := make([]byte, 16+4*len(f.Streams), 20+4*len(f.Streams))
	copy(rec, frameMagic[:])
	rec[4] = byte(f.Type)
	rec[5] = byte(len(f.Streams))
	le := binary.LittleEndian
	le.PutUint16(rec[6:], f.Quality)
	le.PutUint64(rec[8:], uint64(f.PTS))
	for i, s := range f.Streams {
		le.PutUint32(rec[16+4*i:], uint32(len(s)))
	}
	crc := crc32.Checksum(rec, castagnoli)
	for _, s := range f.Streams {
		crc = crc32.Update(crc, castagnoli, s)
	}
	rec = le.AppendUint32(rec, crc)
	w.write(rec)
	for _, s := range f.Streams {
		w.write(s)
	}
	w.frames++
	return w.err
}

// Size is the number of bytes written so far, the seek index included
// once Close has written it.
func (w *Writer) Size() int64 { return w.offset }

// Close writes the seek index if the header promised one and, where it can
// rewrite the header, the final frame count. A header that cannot be
// rewritten keeps a frame count of 0 (unknown), which is valid; one that
// promised another count than was written is an error. Close does not close
// the underlying writer.
func (w *Writer) Close() error {
	if w.h.Indexed {
		at := w.offset
		le := binary.LittleEndian
		b := append([]byte(nil), indexMagic[:]...)
		b = le.AppendUint32(b, uint32(len(w.index)))
		for _, e := range w.index {
			b = le.AppendUint32(b, e.Frame)
			b = le.AppendUint64(b, uint64(e.PTS))
			b = le.AppendUint64(b, uint64(e.Offset))
		}
		b = le.AppendUint32(b, crc32.Checksum(b, castagnoli))
		b = le.AppendUint64(b, uint64(at))
		b = append(b, trailerMagic[:]...)
		w.write(b)
	}
	if w.err != nil || w.h.FrameCount == w.frames {
		return w.err
	}
	why := errors.New("the writer cannot seek")
	if w.rewrite != nil {
		h := w.h
		h.FrameCount = w.frames
		if _, why = w.rewrite.WriteAt(h.marshal(), w.start); why == nil {
			return nil
		}
	}
	if w.h.FrameCount == 0 {
		return nil // the header says the count is unknown, which stays true
	}
	return fmt.Errorf("container: header promised %d frames, %d written, and cannot be rewritten: %w", w.h.FrameCount, w.frames, why)
}

// A Reader reads a file sequentially from any io.Reader.
type Reader struct {
	r      *countingReader
	h      Header
	frames uint32 // frame records read, including one whose checksum failed
	err    error  // ends the stream: io.EOF or the error that left it unreadable
}

// NewReader reads and checks the header.
func NewReader(r io.Reader) (*Reader, error) {
	b := make([]byte, headerSize)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("container: reading header: %w", truncated(err))
	}
	h, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	if b[6]&flagPixelAspect != 0 {
		if h.PixelAspectNum, h.PixelAspectDen, err = readPixelAspect(r); err != nil {
			return nil, err
		}
	}
	return &Reader{r: &countingReader{r: r, n: h.size()}, h: h}, nil
}

func readPixelAspect(r io.Reader) (num, den uint32, err error) {
	b := make([]byte, aspectSize)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, 0, fmt.Errorf("container: reading pixel aspect: %w", truncated(err))
	}
	le := binary.LittleEndian
	if crc32.Checksum(b[:8], castagnoli) != le.Uint32(b[8:]) {
		return 0, 0, errors.New("container: pixel aspect checksum mismatch (corrupt file)")
	}
	num, den = le.Uint32(b), le.Uint32(b[4:])
	if num == 0 || den == 0 {
		return 0, 0, fmt.Errorf("container: pixel aspect %d:%d has a zero term (corrupt file)", num, den)
	}
	return num, den, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Header returns the file header.
func (r *Reader) Header() Header { return r.h }

func truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("file truncated")
	}
	return err
}

// ErrChecksum is wrapped by Reader.Next's error for a frame whose data does
// not match its checksum. The reader has read past it, so the next call
// gives the frame after it; any other error ends the stream.
var ErrChecksum = errors.New("checksum mismatch (corrupt file)")

// Next returns the next frame, or io.EOF after the last one. After an error
// other than ErrChecksum it keeps returning that error.
func (r *Reader) Next() (*Frame, error) {
	if r.err != nil {
		return nil, r.err
	}
	f, err := r.next()
	if err != nil && !errors.Is(err, ErrChecksum) {
		r.err = err
	}
	return f, err
}

func (r *Reader) next() (*Frame, error) {
	var magic [4]byte
	n, err := io.ReadFull(r.r, magic[:])
	if n == 0 && err == io.EOF {
		if r.h.Indexed {
			return nil, fmt.Errorf("container: file ends after %d frames without its index (truncated)", r.frames)
		}
		// A stream written without an index may end after any frame.
		return nil, r.finish()
	}
	if err != nil {
		return nil, fmt.Errorf("container: frame %d: %w", r.frames, truncated(err))
	}
	switch magic {
	case indexMagic:
		if !r.h.Indexed {
			return nil, errors.New("container: index in a file that promised none (corrupt file)")
		}
		if err := r.skipIndex(r.r.n - 4); err != nil {
			return nil, err
		}
		return nil, r.finish()
	case frameMagic:
		if r.h.FrameCount != 0 && r.frames == r.h.FrameCount {
			return nil, fmt.Errorf("container: more frames than the header's %d (corrupt file)", r.h.FrameCount)
		}
	default:
		return nil, fmt.Errorf("container: frame %d: bad record magic %q (corrupt file)", r.frames, magic[:])
	}
	fixed := make([]byte, 16)
	copy(fixed, magic[:])
	if _, err := io.ReadFull(r.r, fixed[4:]); err != nil {
		return nil, fmt.Errorf("container: frame %d: %w", r.frames, truncated(err))
	}
	le := binary.LittleEndian
	f := &Frame{Type: FrameType(fixed[4]), Quality: le.Uint16(fixed[6:]), PTS: int64(le.Uint64(fixed[8:]))}
	ns := int(fixed[5])
	if f.Type > VQ || ns < 1 || ns > MaxStreams {
		return nil, fmt.Errorf("container: frame %d: bad type %d or %d sub-streams (corrupt file)", r.frames, fixed[4], ns)
	}
	sizes := make([]byte, 4*ns+4)
	if _, err := io.ReadFull(r.r, sizes); err != nil {
		return nil, fmt.Errorf("container: frame %d: %w", r.frames, truncated(err))
	}
	// Summed as uint64, so no size wraps to negative where int has 32 bits.
	var sum uint64
	for i := range ns {
		sum += uint64(le.Uint32(sizes[4*i:]))
	}
	if sum > MaxFrameBytes {
		return nil, fmt.Errorf("container: frame %d: sub-streams of %d bytes in all exceed %d (corrupt file)", r.frames, sum, MaxFrameBytes)
	}
	total := int(sum)
	crc := crc32.Checksum(fixed, castagnoli)
	crc = crc32.Update(crc, castagnoli, sizes[:4*ns])
	// Read in bounded steps, so a forged size costs only as much memory as
	// the data that actually arrives.
	payload, err := readLimited(r.r, total)
	if err != nil {
		return nil, fmt.Errorf("container: frame %d payload: %w", r.frames, truncated(err))
	}
	if crc32.Update(crc, castagnoli, payload) != le.Uint32(sizes[4*ns:]) {
		r.frames++
		return nil, fmt.Errorf("container: frame %d: %w", r.frames-1, ErrChecksum)
	}
	for i := range ns {
		s := int(le.Uint32(sizes[4*i:]))
		f.Streams = append(f.Streams, payload[:s:s])
		payload = payload[s:]
	}
	r.frames++
	return f, nil
}

func readLimited(r io.Reader, n int) ([]byte, error) {
	const step = 1 << 20
	buf := make([]byte, 0, min(n, step))
	for len(buf) < n {
		k := min(n-len(buf), step)
		if cap(buf)-len(buf) < k {
			buf = append(buf[:cap(buf)], make([]byte, k)...)[:len(buf)]
		}
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+k])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func (r *Reader) finish() error {
	if r.h.FrameCount != 0 && r.frames < r.h.FrameCount {
		return fmt.Errorf("container: file ends after %d of %d frames (truncated)", r.frames, r.h.FrameCount)
	}
	return io.EOF
}

// skipIndex reads past the index and trailer, checking them, after which the
// file must end.
func (r *Reader) skipIndex(at int64) error {
	var cnt [4]byte
	if _, err := io.ReadFull(r.r, cnt[:]); err != nil {
		return fmt.Errorf("container: index: %w", truncated(err))
	}
	n := binary.LittleEndian.Uint32(cnt[:])
	if n > MaxIndexEntries || n > r.frames {
		return fmt.Errorf("container: index of %d entries for %d frames (corrupt file)", n, r.frames)
	}
	rest := make([]byte, 20*int(n)+4+trailerSize)
	if _, err := io.ReadFull(r.r, rest); err != nil {
		return fmt.Errorf("container: index: %w", truncated(err))
	}
	crc := crc32.Update(crc32.Checksum(append(indexMagic[:], cnt[:]...), castagnoli), castagnoli, rest[:20*n])
	if crc != binary.LittleEndian.Uint32(rest[20*n:]) {
		return errors.New("container: index checksum mismatch (corrupt file)")
	}
	if !bytes.Equal(rest[len(rest)-4:], trailerMagic[:]) || int64(binary.LittleEndian.Uint64(rest[len(rest)-12:])) != at {
		return errors.New("container: bad trailer (corrupt file)")
	}
	var one [1]byte
	if k, _ := io.ReadFull(r.r, one[:]); k != 0 {
		return errors.New("container: data after the trailer (corrupt file)")
	}
	return nil
}

// ReadIndex reads the seek index of a complete file through its trailer.
// A file written without an index gives an error.
func ReadIndex(rs io.ReadSeeker) ([]IndexEntry, error) {
	size, err := rs.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("container: finding the index: %w", err)
	}
	if size < headerSize+trailerSize {
		return nil, errors.New("container: file too short for an index")
	}
	var flags [1]byte
	if _, err := rs.Seek(6, io.SeekStart); err != nil {
		return nil, fmt.Errorf("container: reading header flags: %w", err)
	}
	if _, err := io.ReadFull(rs, flags[:]); err != nil {
		return nil, fmt.Errorf("container: reading header flags: %w", truncated(err))
	}
	first := headerLength(flags[0])
	end := size - trailerSize
	if _, err := rs.Seek(end, io.SeekStart); err != nil {
		return nil, fmt.Errorf("container: finding the index: %w", err)
	}
	tr := make([]byte, trailerSize)
	if _, err := io.ReadFull(rs, tr); err != nil {
		return nil, fmt.Errorf("container: trailer: %w", truncated(err))
	}
	if !bytes.Equal(tr[8:], trailerMagic[:]) {
		return nil, errors.New("container: file has no seek index")
	}
	at := int64(binary.LittleEndian.Uint64(tr))
	if at < first || at > end-8 {
		return nil, errors.New("container: index offset out of range (corrupt file)")
	}
	if _, err := rs.Seek(at, io.SeekStart); err != nil {
		return nil, err
	}
	head := make([]byte, 8)
	if _, err := io.ReadFull(rs, head); err != nil {
		return nil, fmt.Errorf("container: index: %w", truncated(err))
	}
	n := int64(binary.LittleEndian.Uint32(head[4:]))
	if !bytes.Equal(head[:4], indexMagic[:]) || n > MaxIndexEntries || at+8+20*n+4 != end {
		return nil, errors.New("container: bad index (corrupt file)")
	}
	body := make([]byte, 20*n+4)
	if _, err := io.ReadFull(rs, body); err != nil {
		return nil, fmt.Errorf("container: index: %w", truncated(err))
	}
	if crc32.Update(crc32.Checksum(head, castagnoli), castagnoli, body[:20*n]) != binary.LittleEndian.Uint32(body[20*n:]) {
		return nil, errors.New("container: index checksum mismatch (corrupt file)")
	}
	out := make([]IndexEntry, n)
	for i := range out {
		e := body[20*i:]
		out[i] = IndexEntry{Frame: binary.LittleEndian.Uint32(e), PTS: int64(binary.LittleEndian.Uint64(e[4:])),
			Offset: int64(binary.LittleEndian.Uint64(e[12:]))}
		if out[i].Offset < first || out[i].Offset >= at {
			return nil, errors.New("container: index entry out of range (corrupt file)")
		}
	}
	return out, nil
}
