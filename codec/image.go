package codec

import (
	"image"
	"image/color"

	"github.com/lvc-codec/lvc/container"
	"github.com/lvc-codec/lvc/nn"
)

// colorFormatOf says whether an image is stored as gray.
func colorFormatOf(img image.Image) container.ColorFormat {
	switch img.ColorModel() {
	case color.GrayModel, color.Gray16Model:
		return container.Gray
	}
	return container.RGB
}

// HasAlpha reports whether any pixel of img is not fully opaque. The codec
// codes colour only; callers should say so when this is true.
func HasAlpha(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return !o.Opaque()
	}
	return false
}

// imageToTensor converts img to a [1,3,ph,pw] tensor in [0,1], extending the
// right and bottom edges by replication up to the padded size. Colour is
// taken unpremultiplied, so that transparency is dropped, not blended.
func imageToTensor(img image.Image, pw, ph int) *nn.Tensor {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	t := nn.NewTensor(1, 3, ph, pw)
	plane := pw * ph
	r, g, bl := t.Data[:plane], t.Data[plane:2*plane], t.Data[2*plane:]
	const s = 1.0 / 255
	for y := range h {
		row := y * pw
		switch src := img.(type) {
		case *image.RGBA:
			p := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				c := color.NRGBA{p[4*x], p[4*x+1], p[4*x+2], 255}
				if a := p[4*x+3]; a != 255 { // premultiplied: undo it as NRGBAModel does
					c = color.NRGBAModel.Convert(color.RGBA{p[4*x], p[4*x+1], p[4*x+2], a}).(color.NRGBA)
				}
				r[row+x], g[row+x], bl[row+x] = float32(c.R)*s, float32(c.G)*s, float32(c.B)*s
			}
		case *image.NRGBA:
			p := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				r[row+x], g[row+x], bl[row+x] = float32(p[4*x])*s, float32(p[4*x+1])*s, float32(p[4*x+2])*s
			}
		case *image.Gray:
			p := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				v := float32(p[x]) * s
				r[row+x], g[row+x], bl[row+x] = v, v, v
			}
		default:
			for x := range w {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				r[row+x], g[row+x], bl[row+x] = float32(c.R)*s, float32(c.G)*s, float32(c.B)*s
			}
		}
		for _, ch := range [][]float32{r, g, bl} {
			for x := w; x < pw; x++ {
				ch[row+x] = ch[row+w-1]
			}
		}
	}
	for _, ch := range [][]float32{r, g, bl} {
		for y := h; y < ph; y++ {
			copy(ch[y*pw:(y+1)*pw], ch[(h-1)*pw:h*pw])
		}
	}
	return t
}

func to8(v float32) uint8 {
	v = v*255 + 0.5
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}

// tensorToImage crops the padded synthesis output to w x h.
func tensorToImage(t *nn.Tensor, w, h int, format container.ColorFormat) image.Image {
	pw, plane := t.Shape[3], t.Shape[2]*t.Shape[3]
	r, g, b := t.Data[:plane], t.Data[plane:2*plane], t.Data[2*plane:]
	if format == container.Gray {
		img := image.NewGray(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				i := y*pw + x
				// BT.601 luma, the weights Go's color.GrayModel uses.
				img.Pix[y*img.Stride+x] = to8(0.299*r[i] + 0.587*g[i] + 0.114*b[i])
			}
		}
		return img
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		p := img.Pix[y*img.Stride:]
		for x := range w {
			i := y*pw + x
			p[4*x], p[4*x+1], p[4*x+2], p[4*x+3] = to8(r[i]), to8(g[i]), to8(b[i]), 255
		}
	}
	return img
}
