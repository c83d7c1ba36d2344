package bench

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	stdfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// ChartBar is one bar: a labelled set of timings.
type ChartBar struct {
	Label string
	Group string  // e.g. "container", "govmm", "qemu": bars of one group share a colour
	Times Summary // median drawn as the bar, min..p95 as a whisker
}

// ChartMemory is one labelled memory figure.
type ChartMemory struct {
	Label, Group string
	MiB          float64
}

// Chart is a start-up time comparison, optionally with a memory panel.
type Chart struct {
	Title  string
	Note   string // a subtitle line, e.g. "nested harness: absolute times distorted, compare ratios"
	Bars   []ChartBar
	Memory []ChartMemory // optional second panel; empty: omit it
}

// WriteChart renders c to path; the format follows the extension: .svg or
// .png (anything else: error naming the two).
//
// Start-up times are horizontal bars on a log scale, the median as the
// bar and min..p95 as a whisker, each annotated with its median. Bars with
// no measurements (N == 0) are listed as "skipped". Memory, when given, is
// a second panel below, on a linear MiB scale. Bars of one group share a
// colour in both panels; a legend under the title names the groups.
func WriteChart(path string, c Chart) error {
	var format string
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".svg":
		format = "svg"
	case ".png":
		format = "png"
	default:
		return fmt.Errorf("bench: chart %s: unsupported extension %q: use .svg or .png", path, ext)
	}
	var buf bytes.Buffer
	if err := renderChart(&buf, c, format); err != nil {
		return fmt.Errorf("bench: chart %s: %w", path, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// Layout, in points.
const (
	chartWidth   = 720
	chartMargin  = 18
	chartDPI     = 144 // PNG resolution: 720 pt is 1440 px
	timeRowH     = 30
	memoryRowH   = 26
	panelGap     = 16
	panelAxisH   = 44 // tick labels + axis label below the bars
	headingGap   = 6  // between a panel heading and its bars
	barFraction  = 0.62
	textGap      = 5 // between a bar or whisker end and its annotation
	labelGap     = 7 // between a row label and the axis
	legendSwatch = 10
)

var (
	inkColor    = color.RGBA{R: 0x22, G: 0x22, B: 0x22, A: 0xff}
	mutedColor  = color.RGBA{R: 0x66, G: 0x66, B: 0x66, A: 0xff}
	gridColor   = color.RGBA{R: 0xe3, G: 0xe3, B: 0xe3, A: 0xff}
	axisColor   = color.RGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xff}
	whiskerInk  = color.RGBA{R: 0x33, G: 0x33, B: 0x33, A: 0xff}
	noGroupFill = color.RGBA{R: 0x9a, G: 0x9a, B: 0x9a, A: 0xff}

	axisLine = draw.LineStyle{Color: axisColor, Width: vg.Points(0.8)}

	// groupPalette is Tableau 10: muted enough for large filled bars,
	// distinct enough to tell groups apart.
	groupPalette = []color.Color{
		color.RGBA{R: 0x4e, G: 0x79, B: 0xa7, A: 0xff}, // blue
		color.RGBA{R: 0xf2, G: 0x8e, B: 0x2b, A: 0xff}, // orange
		color.RGBA{R: 0x59, G: 0xa1, B: 0x4f, A: 0xff}, // green
		color.RGBA{R: 0xe1, G: 0x57, B: 0x59, A: 0xff}, // red
		color.RGBA{R: 0x76, G: 0xb7, B: 0xb2, A: 0xff}, // teal
		color.RGBA{R: 0xb0, G: 0x7a, B: 0xa1, A: 0xff}, // purple
		color.RGBA{R: 0xed, G: 0xc9, B: 0x48, A: 0xff}, // yellow
		color.RGBA{R: 0x9c, G: 0x75, B: 0x5f, A: 0xff}, // brown
		color.RGBA{R: 0xff, G: 0x9d, B: 0xa7, A: 0xff}, // pink
	}
)

// chartFont returns a Liberation Sans font of size pt.
func chartFont(pt float64, bold, italic bool) font.Font {
	f := font.Font{Typeface: "Liberation", Variant: "Sans", Size: vg.Length(pt)}
	if bold {
		f.Weight = stdfont.WeightBold
	}
	if italic {
		f.Style = stdfont.StyleItalic
	}
	return f
}

func textStyle(f font.Font, c color.Color, xa text.XAlignment, ya text.YAlignment) text.Style {
	return text.Style{Color: c, Font: f, XAlign: xa, YAlign: ya, Handler: plot.DefaultTextHandler}
}

var (
	titleStyle   = textStyle(chartFont(15, true, false), inkColor, draw.XLeft, draw.YTop)
	noteStyle    = textStyle(chartFont(10.5, false, true), mutedColor, draw.XLeft, draw.YTop)
	legendStyle  = textStyle(chartFont(10, false, false), inkColor, draw.XLeft, draw.YCenter)
	headingStyle = textStyle(chartFont(11.5, true, false), inkColor, draw.XLeft, draw.YTop)
	labelStyle   = textStyle(chartFont(10.5, false, false), inkColor, draw.XRight, draw.YBottom)
	valueStyle   = textStyle(chartFont(10, true, false), inkColor, draw.XLeft, draw.YBottom)
	skippedStyle = textStyle(chartFont(10, false, true), mutedColor, draw.XLeft, draw.YBottom)
	tickStyle    = textStyle(chartFont(9.5, false, false), mutedColor, draw.XCenter, draw.YTop)
	axisLabStyle = textStyle(chartFont(9.5, false, false), mutedColor, draw.XCenter, draw.YBottom)
)

// groupColors assigns palette colours to groups in order of first
// appearance, bars first, so that a group keeps its colour in both panels.
func groupColors(c Chart) (order []string, colors map[string]color.Color) {
	colors = map[string]color.Color{}
	add := func(g string) {
		if g == "" {
			return
		}
		if _, ok := colors[g]; ok {
			return
		}
		colors[g] = groupPalette[len(order)%len(groupPalette)]
		order = append(order, g)
	}
	for _, b := range c.Bars {
		add(b.Group)
	}
	for _, m := range c.Memory {
		add(m.Group)
	}
	return order, colors
}

func colorOf(colors map[string]color.Color, group string) color.Color {
	if c, ok := colors[group]; ok {
		return c
	}
	return noGroupFill
}

// panel is one plot with a heading, drawn in a band of the image.
type panel struct {
	heading string
	xlabel  string
	plot    *plot.Plot
	height  vg.Length // heading + bars + axis
}

// renderChart draws c to w as format, "svg" or "png".
func renderChart(w io.Writer, c Chart, format string) (err error) {
	// gonum/plot reports some impossible layouts by panicking; the chart is
	// an optional extra, so turn that into an error rather than a crash.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rendering chart: %v", r)
		}
	}()

	order, colors := groupColors(c)
	c.Title = fitText(titleStyle, c.Title, chartWidth-2*chartMargin)
	c.Note = fitText(noteStyle, c.Note, chartWidth-2*chartMargin)
	var panels []panel
	if len(c.Bars) > 0 {
		panels = append(panels, panel{
			heading: "Start-up time",
			xlabel:  "median (bar) and min–p95 (whisker), log scale",
			plot:    timePlot(c.Bars, colors),
			height:  headingHeight() + vg.Length(timeRowH*len(c.Bars)) + panelAxisH,
		})
	}
	if len(c.Memory) > 0 {
		panels = append(panels, panel{
			heading: "Memory per instance",
			xlabel:  "MiB",
			plot:    memoryPlot(c.Memory, colors),
			height:  headingHeight() + vg.Length(memoryRowH*len(c.Memory)) + panelAxisH,
		})
	}

	headerH := headerHeight(c, order)
	height := chartMargin + headerH + chartMargin
	for i, p := range panels {
		if i > 0 {
			height += panelGap
		}
		height += p.height
	}
	if len(panels) == 0 {
		height += 2 * noteStyle.Height("M")
	}

	var (
		vc  vg.CanvasWriterTo
		svg *svgCanvas
		wd  = vg.Length(chartWidth)
	)
	switch format {
	case "svg":
		svg = &svgCanvas{Canvas: vgsvg.New(wd, height)}
		vc = svg
	case "png":
		vc = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(wd, height), vgimg.UseDPI(chartDPI))}
	default:
		return errors.New("unsupported format " + format)
	}
	dc := draw.New(vc)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	inner := draw.Crop(dc, chartMargin, -chartMargin, chartMargin, -chartMargin)
	top := drawHeader(inner, c, order, colors)

	if len(panels) == 0 {
		sty := skippedStyle
		sty.YAlign = draw.YTop
		inner.FillText(sty, vg.Point{X: inner.Min.X, Y: top}, "no measurements")
	}

	// Stack the panels top to bottom, then line up their data areas so
	// that the label column and the right edge match across panels.
	areas := make([]draw.Canvas, len(panels))
	for i, p := range panels {
		if i > 0 {
			top -= panelGap
		}
		a := inner
		a.Max.Y = top
		a.Min.Y = top - p.height
		areas[i] = a
		top = a.Min.Y
	}
	// The X axis labels are drawn here rather than by gonum/plot, which
	// reserves room for them as if centred on the arithmetic mean of the
	// axis range: far right on a log axis.
	axisLabH := axisLabStyle.Height("Mg") + 4
	plots := make([]*plot.Plot, len(panels))
	bands := make([]draw.Canvas, len(panels))
	for i, p := range panels {
		bands[i] = draw.Crop(areas[i], 0, 0, axisLabH, -(headingHeight()))
		plots[i] = p.plot
	}
	bands = alignPlots(plots, bands)
	for i, p := range panels {
		areas[i].FillText(headingStyle, vg.Point{X: areas[i].Min.X, Y: areas[i].Max.Y}, p.heading)
		p.plot.Draw(bands[i])
		data := p.plot.DataCanvas(bands[i])
		descent := axisLabStyle.FontExtents().Descent
		areas[i].FillText(axisLabStyle, vg.Point{X: data.Center().X, Y: areas[i].Min.Y + descent}, p.xlabel)
	}

	if svg == nil {
		_, err = vc.WriteTo(w)
		return err
	}
	var buf bytes.Buffer
	if _, err := svg.WriteTo(&buf); err != nil {
		return err
	}
	_, err = w.Write(svg.fixText(buf.Bytes()))
	return err
}

// svgCanvas records the width of each string drawn, in order, to fix the
// layout of the SVG's text for viewers without Liberation Sans: fonts are
// not embedded, as that would add a megabyte.
type svgCanvas struct {
	*vgsvg.Canvas
	texts     []svgText
	anchorEnd bool // the next string is right-aligned
}

type svgText struct {
	width     vg.Length
	anchorEnd bool
}

func (c *svgCanvas) FillString(f font.Face, pt vg.Point, s string) {
	c.texts = append(c.texts, svgText{width: f.Width(s), anchorEnd: c.anchorEnd})
	c.anchorEnd = false
	c.Canvas.FillString(f, pt, s)
}

// findSVGCanvas returns the svgCanvas under c, which gonum/plot wraps in
// layers of draw.Canvas, or nil for another canvas.
func findSVGCanvas(c vg.Canvas) *svgCanvas {
	for {
		switch v := c.(type) {
		case *svgCanvas:
			return v
		case draw.Canvas:
			c = v.Canvas
		case *draw.Canvas:
			c = v.Canvas
		default:
			return nil
		}
	}
}

// fixText names fallback fonts (Arial has Liberation Sans' metrics) and
// gives each <text> element its width in Liberation Sans, so that text in
// another font is squeezed to fit instead of running into the bars. Where
// a viewer ignores textLength, right-aligned text is anchored at its end
// so that it still cannot.
func (c *svgCanvas) fixText(svg []byte) []byte {
	svg = bytes.ReplaceAll(svg,
		[]byte("font-family:Liberation Sans;"),
		[]byte("font-family:'Liberation Sans',Arial,Helvetica,sans-serif;"))
	// Text content is escaped, so "<text " only opens elements, one for
	// each FillString.
	parts := bytes.Split(svg, []byte("<text "))
	if len(parts)-1 != len(c.texts) {
		return svg
	}
	var out bytes.Buffer
	out.Write(parts[0])
	for i, p := range parts[1:] {
		t := c.texts[i]
		fmt.Fprintf(&out, `<text textLength="%.2f" lengthAdjust="spacingAndGlyphs" `, t.width.Points())
		if t.anchorEnd {
			p = anchorAtEnd(p, t.width)
		}
		out.Write(p)
	}
	return out.Bytes()
}

// anchorAtEnd rewrites the attributes of a <text> element, starting
// `x="N" `, to put x at the end of the text and anchor it there.
func anchorAtEnd(elem []byte, width vg.Length) []byte {
	rest, ok := bytes.CutPrefix(elem, []byte(`x="`))
	if !ok {
		return elem
	}
	num, rest, ok := bytes.Cut(rest, []byte(`"`))
	if !ok {
		return elem
	}
	x, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return elem
	}
	return fmt.Appendf(nil, `text-anchor="end" x="%.2f"%s`, x+width.Points(), rest)
}

func headingHeight() vg.Length {
	return headingStyle.Height("Mg") + headingGap
}

// headerHeight is the height of the title, note and legend block.
func headerHeight(c Chart, groups []string) vg.Length {
	var h vg.Length
	if c.Title != "" {
		h += titleStyle.Height(c.Title) + 4
	}
	if c.Note != "" {
		h += noteStyle.Height(c.Note) + 4
	}
	if len(groups) > 0 {
		h += legendRows(groups) * (legendStyle.Height("Mg") + 4)
	}
	if h > 0 {
		h += 10
	}
	return h
}

// legendItemWidth is the width a legend entry takes, spacing included.
func legendItemWidth(g string) vg.Length {
	return legendSwatch + 5 + legendStyle.Width(legendName(g)) + 18
}

// legendName is g, shortened to fit a line.
func legendName(g string) string {
	return fitText(legendStyle, g, chartWidth-2*chartMargin-legendSwatch-5-18)
}

// legendRows is how many rows the legend needs within the chart width.
func legendRows(groups []string) vg.Length {
	rows, x := 1, vg.Length(0)
	avail := vg.Length(chartWidth - 2*chartMargin)
	for _, g := range groups {
		w := legendItemWidth(g)
		if x > 0 && x+w > avail {
			rows++
			x = 0
		}
		x += w
	}
	return vg.Length(rows)
}

// drawHeader draws the title, note and legend at the top of c and returns
// the y below them.
func drawHeader(c draw.Canvas, ch Chart, groups []string, colors map[string]color.Color) vg.Length {
	y := c.Max.Y
	if ch.Title != "" {
		c.FillText(titleStyle, vg.Point{X: c.Min.X, Y: y}, ch.Title)
		y -= titleStyle.Height(ch.Title) + 4
	}
	if ch.Note != "" {
		c.FillText(noteStyle, vg.Point{X: c.Min.X, Y: y}, ch.Note)
		y -= noteStyle.Height(ch.Note) + 4
	}
	if len(groups) > 0 {
		rowH := legendStyle.Height("Mg") + 4
		x := c.Min.X
		cy := y - rowH/2
		for _, g := range groups {
			w := legendItemWidth(g)
			if x > c.Min.X && x+w > c.Max.X {
				x = c.Min.X
				cy -= rowH
				y -= rowH
			}
			sw := vg.Rectangle{
				Min: vg.Point{X: x, Y: cy - legendSwatch/2},
				Max: vg.Point{X: x + legendSwatch, Y: cy + legendSwatch/2},
			}
			c.SetColor(colorOf(colors, g))
			c.Fill(sw.Path())
			c.FillText(legendStyle, vg.Point{X: x + legendSwatch + 5, Y: cy}, legendName(g))
			x += w
		}
		y -= rowH
	}
	if y < c.Max.Y {
		y -= 10
	}
	return y
}

// alignPlots narrows each band so that the plots' data areas share their
// left and right edges: the label column lines up across panels.
func alignPlots(plots []*plot.Plot, bands []draw.Canvas) []draw.Canvas {
	out := make([]draw.Canvas, len(bands))
	copy(out, bands)
	var left vg.Length
	for i, p := range plots {
		left = max(left, p.DataCanvas(out[i]).Min.X-out[i].Min.X)
	}
	for i, p := range plots {
		out[i].Min.X += left - (p.DataCanvas(out[i]).Min.X - out[i].Min.X)
	}
	// The right padding depends on the width through the annotations'
	// glyph boxes, so converge on the narrowest right edge.
	right := vg.Length(math.Inf(1))
	for i, p := range plots {
		right = min(right, p.DataCanvas(out[i]).Max.X)
	}
	for range 4 {
		for i, p := range plots {
			out[i].Max.X -= p.DataCanvas(out[i]).Max.X - right
		}
	}
	return out
}

// hrow is one horizontal bar.
type hrow struct {
	label   string
	fill    color.Color
	skipped bool
	value   float64 // bar end, in axis units
	whisker bool
	lo, hi  float64 // whisker, in axis units
	text    string  // annotation
}

// hbars draws horizontal bars, row 0 at the top, from the left end of
// the X axis. It draws its own vertical grid lines under the bars.
type hbars struct {
	rows []hrow
}

func (h *hbars) y(i int) float64 { return float64(len(h.rows) - 1 - i) }

// clamp keeps v inside the X axis so a log scale never sees 0.
func clamp(p *plot.Plot, v float64) float64 {
	return math.Min(math.Max(v, p.X.Min), p.X.Max)
}

// textX is where a row's annotation starts, in axis units.
func (r hrow) textX(p *plot.Plot) float64 {
	if r.skipped {
		return p.X.Min
	}
	end := r.value
	if r.whisker {
		end = math.Max(end, r.hi)
	}
	return clamp(p, end)
}

func (r hrow) textStyle() text.Style {
	if r.skipped {
		return skippedStyle
	}
	return valueStyle
}

func (h *hbars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)

	grid := draw.LineStyle{Color: gridColor, Width: vg.Points(0.6)}
	for _, t := range p.X.Tick.Marker.Ticks(p.X.Min, p.X.Max) {
		if t.IsMinor() || t.Value < p.X.Min || t.Value > p.X.Max {
			continue
		}
		x := trX(t.Value)
		c.StrokeLine2(grid, x, c.Min.Y, x, c.Max.Y)
	}

	thick := (trY(1) - trY(0)) * barFraction
	whisker := draw.LineStyle{Color: whiskerInk, Width: vg.Points(1.1)}
	x0 := trX(p.X.Min)
	for i, r := range h.rows {
		y := trY(h.y(i))
		if !r.skipped {
			x1 := trX(clamp(p, r.value))
			if x1 > x0 {
				c.SetColor(r.fill)
				c.Fill(vg.Rectangle{
					Min: vg.Point{X: x0, Y: y - thick/2},
					Max: vg.Point{X: x1, Y: y + thick/2},
				}.Path())
			}
			if r.whisker {
				lo, hi := trX(clamp(p, r.lo)), trX(clamp(p, r.hi))
				c.StrokeLine2(whisker, lo, y, hi, y)
				cap := thick * 0.28
				c.StrokeLine2(whisker, lo, y-cap, lo, y+cap)
				c.StrokeLine2(whisker, hi, y-cap, hi, y+cap)
			}
		}
		fillMiddle(c, r.textStyle(), vg.Point{X: trX(r.textX(p)) + textGap, Y: y}, r.text)
		if sc := findSVGCanvas(c.Canvas); sc != nil {
			sc.anchorEnd = true
		}
		fillMiddle(c, labelStyle, vg.Point{X: x0 - labelGap, Y: y}, r.label)
	}
	c.StrokeLine2(axisLine, x0, c.Min.Y, x0, c.Max.Y)
}

// fillMiddle draws one line of text with the middle of its capitals at
// pt.Y, which centres it on a bar better than its box's middle does: the
// box includes the descenders.
func fillMiddle(c draw.Canvas, sty text.Style, pt vg.Point, txt string) {
	// Plain text puts the baseline at pt.Y + YAlign*height - ascent + size.
	const capMiddle = 0.35 // Liberation Sans capitals are 0.69 em high
	sty.YAlign = draw.YBottom
	size := sty.Font.Size
	baseline := pt.Y - capMiddle*size
	pt.Y = baseline + sty.FontExtents().Ascent - size
	c.FillText(sty, pt, txt)
}

// GlyphBoxes reserves room for the row labels left of the axis and the
// annotations right of the bars.
func (h *hbars) GlyphBoxes(p *plot.Plot) []plot.GlyphBox {
	boxes := make([]plot.GlyphBox, 0, 2*len(h.rows))
	for i, r := range h.rows {
		y := p.Y.Norm(h.y(i))
		sty := r.textStyle()
		wd, ht := sty.Width(r.text), sty.Height(r.text)
		boxes = append(boxes, plot.GlyphBox{
			X: p.X.Norm(r.textX(p)),
			Y: y,
			Rectangle: vg.Rectangle{
				Min: vg.Point{X: textGap, Y: -ht / 2},
				Max: vg.Point{X: textGap + wd, Y: ht / 2},
			},
		})
		if r.label != "" {
			wd, ht := labelStyle.Width(r.label), labelStyle.Height(r.label)
			boxes = append(boxes, plot.GlyphBox{
				X: 0,
				Y: y,
				Rectangle: vg.Rectangle{
					Min: vg.Point{X: -labelGap - wd, Y: -ht / 2},
					Max: vg.Point{X: -labelGap, Y: ht / 2},
				},
			})
		}
	}
	return boxes
}

// newBarPlot returns a plot styled for horizontal bars. The rows' labels
// are drawn by hbars rather than as Y tick labels, to centre them on the
// bars as the annotations are.
func newBarPlot(rows []hrow) *plot.Plot {
	p := plot.New()
	p.BackgroundColor = nil
	p.Add(&hbars{rows: rows})

	p.Y.Min, p.Y.Max = -0.5, float64(len(rows))-0.5
	p.Y.Tick.Marker = plot.ConstantTicks{}
	p.Y.Tick.Length = 0
	p.Y.Padding = 0
	p.Y.LineStyle = draw.LineStyle{} // hbars draws it, right of the labels

	p.X.Padding = 0
	p.X.LineStyle = axisLine
	p.X.Tick.LineStyle = draw.LineStyle{Color: axisColor, Width: vg.Points(0.6)}
	p.X.Tick.Length = 4
	p.X.Tick.Label = tickStyle
	return p
}

// rowLabel is a bar's label on one line, shortened to leave the bars
// most of the width.
func rowLabel(s string) string {
	const maxWidth = 0.42 * (chartWidth - 2*chartMargin)
	return fitText(labelStyle, strings.Join(strings.Fields(s), " "), maxWidth)
}

// fitText shortens each line of s that is wider than w in sty, ending it
// with an ellipsis.
func fitText(sty text.Style, s string, w vg.Length) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if sty.Width(l) <= w {
			continue
		}
		r := []rune(l)
		// The longest prefix that fits with the ellipsis.
		n := sort.Search(len(r), func(n int) bool {
			return sty.Width(strings.TrimRight(string(r[:n+1]), " ")+"…") > w
		})
		lines[i] = strings.TrimRight(string(r[:n]), " ") + "…"
	}
	return strings.Join(lines, "\n")
}

// seconds is d in the time axis' unit.
func seconds(d time.Duration) float64 { return max(d, 0).Seconds() }

func timePlot(bars []ChartBar, colors map[string]color.Color) *plot.Plot {
	rows := make([]hrow, len(bars))
	lo, hi := math.Inf(1), 0.0
	for i, b := range bars {
		r := hrow{label: rowLabel(b.Label), fill: colorOf(colors, b.Group)}
		if b.Times.N <= 0 {
			r.skipped, r.text = true, "skipped"
			rows[i] = r
			continue
		}
		t := b.Times
		r.value = seconds(t.Median)
		// A zero Min or P95 is unknown rather than measured: no whisker
		// that way.
		r.lo, r.hi = r.value, r.value
		if t.Min > 0 {
			r.lo = seconds(min(t.Min, t.Median))
		}
		if t.P95 > 0 {
			r.hi = seconds(max(t.P95, t.Median))
		}
		r.whisker = r.hi > r.lo
		r.text = formatDuration(max(t.Median, 0))
		for _, v := range []float64{r.lo, r.value, r.hi} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		rows[i] = r
	}
	if hi == 0 { // all skipped or zero: any sensible range
		lo, hi = 0.01, 1
	}

	p := newBarPlot(rows)
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = durationTicks{}
	// Leave some room left of the shortest bar so that it has a length,
	// and end on a round value just past the longest whisker.
	p.X.Min = niceFloor(lo / 1.6)
	p.X.Max = niceCeil(hi * 1.02)
	if p.X.Max/p.X.Min < 10 { // at least one decade: bars of similar times still differ
		p.X.Min = niceFloor(p.X.Max / 10)
	}
	return p
}

func memoryPlot(mem []ChartMemory, colors map[string]color.Color) *plot.Plot {
	rows := make([]hrow, len(mem))
	hi := 0.0
	for i, m := range mem {
		v := m.MiB
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			v = 0
		}
		rows[i] = hrow{label: rowLabel(m.Label), fill: colorOf(colors, m.Group), value: v, text: formatMiB(v)}
		hi = math.Max(hi, v)
	}
	if hi == 0 {
		hi = 1
	}
	p := newBarPlot(rows)
	p.X.Min = 0
	step := mibStep(hi)
	p.X.Max = math.Ceil(hi*1.02/step) * step
	p.X.Tick.Marker = mibTicks{}
	return p
}

// niceFloor is the largest 1, 2 or 5 times a power of ten not above v > 0.
func niceFloor(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{5, 2, 1} {
		if m*e <= v*(1+1e-9) {
			return m * e
		}
	}
	return e
}

// niceCeil is the smallest 1, 2 or 5 times a power of ten not below v > 0.
func niceCeil(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v*(1-1e-9) {
			return m * e
		}
	}
	return 10 * e
}

// durationTicks marks a log time axis in seconds: every integer multiple
// of a power of ten, some of them labelled.
type durationTicks struct{}

func (durationTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo {
		return nil
	}
	// Label 1, 2, 5 over short ranges, 1, 3 over middling ones, else
	// decades only, so that labels stay about an inch apart.
	labelled := map[int]bool{1: true}
	switch span := math.Log10(hi / lo); {
	case span <= 2.5:
		labelled[2], labelled[5] = true, true
	case span <= 5:
		labelled[3] = true
	}
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		dec := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := float64(m) * dec
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if labelled[m] {
				t.Label = formatDuration(time.Duration(math.Round(v * 1e9)))
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// mibStep is a round tick step giving about five ticks over span > 0.
func mibStep(span float64) float64 { return niceCeil(span / 5) }

// mibTicks marks a linear MiB axis at round steps.
type mibTicks struct{}

func (mibTicks) Ticks(lo, hi float64) []plot.Tick {
	if hi <= lo {
		return nil
	}
	step := mibStep(hi - lo)
	var ticks []plot.Tick
	for i := 0; ; i++ {
		v := lo + float64(i)*step
		if v > hi*(1+1e-9) {
			break
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: trimFloat(v, 1)})
	}
	return ticks
}

// formatDuration is d for a person, to about two significant figures:
// "850 µs", "42 ms", "3.1 s".
func formatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + formatDuration(-d)
	}
	if d == 0 {
		return "0 s"
	}
	units := []struct {
		name string
		size time.Duration
	}{{"ns", time.Nanosecond}, {"µs", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}}
	i := len(units) - 1
	for i > 0 && d < units[i].size {
		i--
	}
	for {
		v := float64(d) / float64(units[i].size)
		s := roundSig(v)
		// 999.7 ms rounds to "1000"; say "1 s" instead.
		if i < len(units)-1 && s >= 1000 {
			i++
			continue
		}
		return trimFloat(s, 1) + " " + units[i].name
	}
}

// roundSig rounds v ≥ 0 to one decimal below 10 and to integers above.
func roundSig(v float64) float64 {
	if v < 10 {
		return math.Round(v*10) / 10
	}
	return math.Round(v)
}

// trimFloat formats v with up to prec decimals, dropping a trailing ".0".
func trimFloat(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// formatMiB is a memory figure: "6 MiB", "9.5 MiB", "120 MiB".
func formatMiB(v float64) string {
	return trimFloat(roundSig(v), 1) + " MiB"
}
