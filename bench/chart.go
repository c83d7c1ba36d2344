package bench

import (
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The chart is SVG written by hand rather than drawn with a plotting
// library: gonum/plot, for one, parses a dozen embedded fonts at init, in
// every govmm process, adding megabytes to the VMM's overhead. Nothing here
// does work at init.

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

// WriteChart renders c as SVG to path, which must end in .svg: for a PNG,
// convert the SVG (rsvg-convert -o x.png x.svg).
//
// Start-up times are horizontal bars on a log scale, the median as the
// bar and min..p95 as a whisker, each annotated with its median. Bars with
// no measurements (N == 0) are listed as "skipped". Memory, when given, is
// a second panel below, on a linear MiB scale. Bars of one group share a
// colour in both panels; a legend under the title names the groups.
//
// The chart is rendered in memory first: on error no file is written.
func WriteChart(path string, c Chart) error {
	switch ext := filepath.Ext(path); strings.ToLower(ext) {
	case ".svg":
	case ".png":
		svgPath := strings.TrimSuffix(path, ext) + ".svg"
		return fmt.Errorf("bench: chart %s: only SVG is drawn (.svg); convert it with rsvg-convert -o %s %s if you need a PNG", path, path, svgPath)
	default:
		return fmt.Errorf("bench: chart %s: only SVG is drawn: name the file .svg (convert it with rsvg-convert for a PNG)", path)
	}
	if err := os.WriteFile(path, renderChart(c), 0o644); err != nil {
		return fmt.Errorf("bench: chart: %w", err)
	}
	return nil
}

// Layout, in px (user units of the SVG's viewBox).
const (
	chartWidth  = 960
	chartMargin = 24

	titleSize   = 20
	titleLineH  = 26
	noteSize    = 13
	noteLineH   = 18
	legendSize  = 13
	legendRowH  = 22
	legendSw    = 12 // legend swatch
	legendGap   = 6  // swatch to name
	legendSpace = 22 // between legend entries
	headerGap   = 14 // header to the first panel

	headingSize = 15
	headingH    = 28 // heading line, bars below it
	labelSize   = 13
	valueSize   = 13
	tickSize    = 12
	timeRowH    = 34
	memoryRowH  = 28
	barFraction = 0.6
	axisH       = 46 // below the bars: ticks, tick labels, caption
	panelGap    = 22

	labelGap = 10 // row label to the axis
	textGap  = 6  // bar or whisker end to its annotation
	tickLen  = 5

	maxLabelFrac = 0.4 // of the plot width, for the label column
	maxNoteLines = 3
	maxTitleLine = 2
)

const (
	fontFamily  = "Liberation Sans, Arial, Helvetica, sans-serif"
	inkColor    = "#222222"
	mutedColor  = "#666666"
	gridColor   = "#e3e3e3"
	axisColor   = "#888888"
	whiskerInk  = "#333333"
	noGroupFill = "#9a9a9a"
)

// groupPalette is Tableau 10: muted enough for large filled bars,
// distinct enough to tell groups apart.
var groupPalette = [...]string{
	"#4e79a7", // blue
	"#f28e2b", // orange
	"#59a14f", // green
	"#e15759", // red
	"#76b7b2", // teal
	"#b07aa1", // purple
	"#edc948", // yellow
	"#9c755f", // brown
	"#ff9da7", // pink
}

// groupColors assigns palette colours to groups in order of first
// appearance, bars first, so that a group keeps its colour in both panels.
func groupColors(c Chart) (order []string, colors map[string]string) {
	colors = map[string]string{}
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

func colorOf(colors map[string]string, group string) string {
	if c, ok := colors[group]; ok {
		return c
	}
	return noGroupFill
}

// Text widths are estimated, as the SVG names fonts rather than embeds
// them: from the advance widths of Liberation Sans (Arial's metrics, in
// 1/1000 em, for ASCII from the space), made 15% wider, 25% in bold, to
// leave room for a wider fallback such as DejaVu Sans. Other characters
// count 0.6 em.
var (
	regularWidths = [95]uint16{
		278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' '../
		556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0..?
		1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @..O
		667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P.._
		333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // `..o
		556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // p..~
	}
	boldWidths = [95]uint16{
		278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
		556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
		975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
		667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
		333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
		611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
	}
)

// textWidth estimates the width of s in px at size px.
func textWidth(s string, size float64, bold bool) float64 {
	widths, wider := &regularWidths, 1.15
	if bold {
		widths, wider = &boldWidths, 1.25
	}
	em := 0
	for _, r := range s {
		if r >= ' ' && r <= '~' {
			em += int(widths[r-' '])
		} else {
			em += 600
		}
	}
	return float64(em) / 1000 * size * wider
}

// shorten returns s, shortened to at most w px wide at size with an
// ellipsis if need be.
func shorten(s string, size float64, bold bool, w float64) string {
	if textWidth(s, size, bold) <= w {
		return s
	}
	r := []rune(s)
	for n := len(r) - 1; n > 0; n-- {
		t := strings.TrimRight(string(r[:n]), " ") + "…"
		if textWidth(t, size, bold) <= w {
			return t
		}
	}
	return "…"
}

// wrap breaks s into lines at most w px wide at size: at newlines and
// between words, shortening a word too long for a line and the last of
// maxLines lines when there is more.
func wrap(s string, size float64, bold bool, w float64, maxLines int) []string {
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			if line != "" && textWidth(line+" "+word, size, bold) <= w {
				line += " " + word
				continue
			}
			if line != "" {
				lines = append(lines, line)
			}
			line = shorten(word, size, bold, w)
		}
		lines = append(lines, line)
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > maxLines {
		last := strings.Join(lines[maxLines-1:], " ") + "…"
		lines = append(lines[:maxLines-1], shorten(last, size, bold, w))
	}
	return lines
}

// rowLabel is a bar's label on one line, shortened to at most w px.
func rowLabel(s string, w float64) string {
	return shorten(strings.Join(strings.Fields(s), " "), labelSize, false, w)
}

// svg accumulates the chart's markup.
type svg struct{ b strings.Builder }

// num formats a coordinate: at most one decimal.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// esc escapes s for XML text or a quoted attribute; characters XML cannot
// hold become U+FFFD.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}

func (s *svg) printf(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

func (s *svg) rect(x, y, w, h float64, fill string) {
	if w <= 0 || h <= 0 {
		return
	}
	s.printf(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>`+"\n", num(x), num(y), num(w), num(h), fill)
}

func (s *svg) line(x1, y1, x2, y2 float64, stroke string, width float64) {
	s.printf(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"/>`+"\n",
		num(x1), num(y1), num(x2), num(y2), stroke, num(width))
}

// textStyle is how a string is drawn.
type textStyle struct {
	size   float64
	bold   bool
	italic bool
	fill   string
	anchor string // "", "middle" or "end"
}

var (
	titleStyle   = textStyle{size: titleSize, bold: true, fill: inkColor}
	noteStyle    = textStyle{size: noteSize, italic: true, fill: mutedColor}
	legendStyle  = textStyle{size: legendSize, fill: inkColor}
	headingStyle = textStyle{size: headingSize, bold: true, fill: inkColor}
	labelStyle   = textStyle{size: labelSize, fill: inkColor, anchor: "end"}
	valueStyle   = textStyle{size: valueSize, bold: true, fill: inkColor}
	skippedStyle = textStyle{size: valueSize, italic: true, fill: mutedColor}
	tickStyle    = textStyle{size: tickSize, fill: mutedColor, anchor: "middle"}
	captionStyle = textStyle{size: tickSize, fill: mutedColor, anchor: "middle"}
)

// text draws t with its baseline at y.
func (s *svg) text(x, y float64, st textStyle, t string) {
	s.printf(`<text x="%s" y="%s" font-size="%s"`, num(x), num(y), num(st.size))
	if st.bold {
		s.printf(` font-weight="bold"`)
	}
	if st.italic {
		s.printf(` font-style="italic"`)
	}
	if st.anchor != "" {
		s.printf(` text-anchor="%s"`, st.anchor)
	}
	s.printf(` fill="%s">%s</text>`+"\n", st.fill, esc(t))
}

// textMiddle draws t with the middle of its capitals at y, which centres
// it on a bar better than the middle of its box would: that includes the
// descenders.
func (s *svg) textMiddle(x, y float64, st textStyle, t string) {
	s.text(x, y+0.35*st.size, st, t)
}

// hrow is one horizontal bar.
type hrow struct {
	label   string
	fill    string
	skipped bool
	value   float64 // bar end, in axis units; 0 or less: no bar
	lo, hi  float64 // whisker, in axis units; 0: no whisker that way
	text    string  // annotation
}

// end is where the row's bar or whisker ends, in axis units.
func (r hrow) end() float64 { return max(r.value, r.hi) }

// tick is a mark on an axis; minor ticks have no label.
type tick struct {
	value float64
	label string
}

// axis maps values to x in px.
type axis struct {
	lo, hi float64
	log    bool
	x0, x1 float64 // px
}

func (a axis) x(v float64) float64 {
	v = min(max(v, a.lo), a.hi)
	if a.log {
		return a.x0 + (a.x1-a.x0)*math.Log(v/a.lo)/math.Log(a.hi/a.lo)
	}
	return a.x0 + (a.x1-a.x0)*(v-a.lo)/(a.hi-a.lo)
}

// panel is one band of bars with a heading and an X axis.
type panel struct {
	heading, caption string
	rows             []hrow
	rowH             float64
	log              bool
	lo, hi           float64 // axis range
}

func (p panel) height() float64 { return headingH + p.rowH*float64(len(p.rows)) + axisH }

// seconds is d in the time axis' unit.
func seconds(d time.Duration) float64 { return max(d, 0).Seconds() }

func timePanel(bars []ChartBar, colors map[string]string, labelW float64) panel {
	rows := make([]hrow, len(bars))
	lo, hi := math.Inf(1), 0.0
	for i, b := range bars {
		r := hrow{label: rowLabel(b.Label, labelW), fill: colorOf(colors, b.Group)}
		if b.Times.N <= 0 {
			r.skipped, r.text = true, "skipped"
			rows[i] = r
			continue
		}
		t := b.Times
		r.value = seconds(t.Median)
		// A zero Min or P95 is unknown rather than measured: no whisker
		// that way.
		if t.Min > 0 {
			r.lo = seconds(t.Min)
			if r.value > 0 {
				r.lo = min(r.lo, r.value)
			}
		}
		if t.P95 > 0 {
			r.hi = seconds(max(t.P95, t.Median))
		}
		r.text = formatDuration(max(t.Median, 0))
		for _, v := range []float64{r.lo, r.value, r.hi} {
			if v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		rows[i] = r
	}
	lo, hi = timeRange(lo, hi)
	return panel{
		heading: "Start-up time",
		caption: "median (bar) and min–p95 (whisker), log scale",
		rows:    rows, rowH: timeRowH, log: true, lo: lo, hi: hi,
	}
}

// timeRange is the log axis' range, in seconds, for times from lo to hi:
// some room left of the shortest bar so that it has a length, a round
// value just past the longest whisker, and at least a decade, so that bars
// of similar times still differ.
func timeRange(lo, hi float64) (float64, float64) {
	if !(hi > 0) || math.IsInf(hi, 0) || !(lo > 0) { // all skipped or zero: any sensible range
		return 0.01, 1
	}
	lo, hi = niceFloor(lo/1.6), niceCeil(hi*1.02)
	if hi/lo < 10 {
		lo = niceFloor(hi / 10)
	}
	return lo, hi
}

func memoryPanel(mem []ChartMemory, colors map[string]string, labelW float64) panel {
	rows := make([]hrow, len(mem))
	hi := 0.0
	for i, m := range mem {
		v := m.MiB
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			v = 0
		}
		rows[i] = hrow{label: rowLabel(m.Label, labelW), fill: colorOf(colors, m.Group), value: v, text: formatMiB(v)}
		hi = max(hi, v)
	}
	if hi == 0 {
		hi = 1
	}
	step := mibStep(hi)
	return panel{
		heading: "Memory per instance",
		caption: "MiB",
		rows:    rows, rowH: memoryRowH, lo: 0, hi: math.Ceil(hi*1.02/step) * step,
	}
}

// renderChart draws c as an SVG document.
func renderChart(c Chart) []byte {
	order, colors := groupColors(c)
	const inner = chartWidth - 2*chartMargin

	// The label column fits the longest label, up to a cap; the right
	// margin the widest annotation. Both panels share them, so that their
	// axes line up.
	var labels, texts []string
	for _, b := range c.Bars {
		labels = append(labels, strings.Join(strings.Fields(b.Label), " "))
	}
	for _, m := range c.Memory {
		labels = append(labels, strings.Join(strings.Fields(m.Label), " "))
	}
	labelW := 0.0
	for _, l := range labels {
		labelW = max(labelW, textWidth(l, labelSize, false))
	}
	labelW = min(labelW, maxLabelFrac*inner)

	var panels []panel
	if len(c.Bars) > 0 {
		panels = append(panels, timePanel(c.Bars, colors, labelW))
	}
	if len(c.Memory) > 0 {
		panels = append(panels, memoryPanel(c.Memory, colors, labelW))
	}
	valueW := 0.0
	for _, p := range panels {
		for _, r := range p.rows {
			if !r.skipped {
				texts = append(texts, r.text)
			}
		}
	}
	for _, t := range texts {
		valueW = max(valueW, textWidth(t, valueSize, true))
	}
	x0 := chartMargin + labelW + labelGap
	if labelW == 0 {
		x0 = chartMargin
	}
	// Half the last tick label overhangs the data area's right edge.
	x1 := chartWidth - chartMargin - max(textGap+valueW, textWidth("500 ms", tickSize, false)/2)

	title := wrap(c.Title, titleSize, true, inner, maxTitleLine)
	note := wrap(c.Note, noteSize, false, inner, maxNoteLines)
	legend := legendLayout(order)

	// Heights first: the SVG's size comes first.
	y := float64(chartMargin)
	header := float64(len(title))*titleLineH + float64(len(note))*noteLineH + float64(len(legend))*legendRowH
	if header > 0 {
		y += header + headerGap
	}
	for i, p := range panels {
		if i > 0 {
			y += panelGap
		}
		y += p.height()
	}
	if len(panels) == 0 {
		y += noteLineH
	}
	height := math.Ceil(y + chartMargin)

	var s svg
	s.printf(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	s.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%s" viewBox="0 0 %d %s" font-family="%s">`+"\n",
		chartWidth, num(height), chartWidth, num(height), fontFamily)
	if c.Title != "" {
		s.printf("<title>%s</title>\n", esc(c.Title))
	}
	s.rect(0, 0, chartWidth, height, "#ffffff")

	// Header: title, note, legend. Baselines sit at 0.75 of a line.
	y = chartMargin
	for _, l := range title {
		s.text(chartMargin, y+0.75*titleLineH, titleStyle, l)
		y += titleLineH
	}
	for _, l := range note {
		s.text(chartMargin, y+0.75*noteLineH, noteStyle, l)
		y += noteLineH
	}
	for _, row := range legend {
		x, mid := float64(chartMargin), y+legendRowH/2
		for _, e := range row {
			s.rect(x, mid-legendSw/2, legendSw, legendSw, colorOf(colors, e.group))
			s.textMiddle(x+legendSw+legendGap, mid, legendStyle, e.name)
			x += e.width
		}
		y += legendRowH
	}
	if header > 0 {
		y += headerGap
	}

	if len(panels) == 0 {
		s.text(chartMargin, y+0.75*noteLineH, skippedStyle, "no measurements")
	}
	for i, p := range panels {
		if i > 0 {
			y += panelGap
		}
		drawPanel(&s, p, y, axis{lo: p.lo, hi: p.hi, log: p.log, x0: x0, x1: x1})
		y += p.height()
	}
	s.printf("</svg>\n")
	return []byte(s.b.String())
}

// legendEntry is a group in the legend: its name, shortened to fit a line,
// and the width it takes, spacing included.
type legendEntry struct {
	group, name string
	width       float64
}

// legendLayout breaks the legend into rows that fit the chart's width.
func legendLayout(groups []string) [][]legendEntry {
	const avail = chartWidth - 2*chartMargin
	var rows [][]legendEntry
	x := 0.0
	for _, g := range groups {
		name := shorten(strings.Join(strings.Fields(g), " "), legendSize, false, avail-legendSw-legendGap-legendSpace)
		e := legendEntry{group: g, name: name, width: legendSw + legendGap + textWidth(name, legendSize, false) + legendSpace}
		if len(rows) == 0 || x > 0 && x+e.width-legendSpace > avail {
			rows = append(rows, nil)
			x = 0
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], e)
		x += e.width
	}
	return rows
}

// drawPanel draws p with its top at y.
func drawPanel(s *svg, p panel, y float64, a axis) {
	s.text(chartMargin, y+0.7*headingH, headingStyle, p.heading)
	top := y + headingH
	bottom := top + p.rowH*float64(len(p.rows))

	ticks := linearTicks(a.lo, a.hi)
	if a.log {
		ticks = timeTicks(a.lo, a.hi, a.x1-a.x0)
	}
	// Grid lines and ticks under the bars.
	s.printf("<g>\n")
	for _, t := range ticks {
		x := a.x(t.value)
		if t.label == "" {
			s.line(x, bottom, x, bottom+tickLen*0.6, axisColor, 0.8)
			continue
		}
		if x > a.x0+0.5 {
			s.line(x, top, x, bottom, gridColor, 1)
		}
		s.line(x, bottom, x, bottom+tickLen, axisColor, 0.8)
		s.text(x, bottom+tickLen+tickSize+2, tickStyle, t.label)
	}
	s.printf("</g>\n")

	thick := p.rowH * barFraction
	capH := thick * 0.28
	for i, r := range p.rows {
		mid := top + p.rowH*(float64(i)+0.5)
		s.textMiddle(a.x0-labelGap, mid, labelStyle, r.label)
		if r.skipped {
			s.textMiddle(a.x0+textGap, mid, skippedStyle, r.text)
			continue
		}
		if r.value > 0 {
			s.rect(a.x0, mid-thick/2, a.x(r.value)-a.x0, thick, r.fill)
		}
		// The whisker runs from min to p95, each end skipped when unknown.
		lo, hi := r.lo, r.hi
		if lo <= 0 {
			lo = r.value
		}
		if hi <= 0 {
			hi = r.value
		}
		if hi > lo && hi > 0 {
			xl, xh := a.x(max(lo, a.lo)), a.x(hi)
			s.line(xl, mid, xh, mid, whiskerInk, 1.2)
			if r.lo > 0 && r.lo < hi {
				s.line(xl, mid-capH, xl, mid+capH, whiskerInk, 1.2)
			}
			if r.hi > 0 && r.hi > lo {
				s.line(xh, mid-capH, xh, mid+capH, whiskerInk, 1.2)
			}
		}
		end := a.x0
		if r.end() > 0 {
			end = a.x(r.end())
		}
		s.textMiddle(end+textGap, mid, valueStyle, r.text)
	}

	// Axes over the bars' ends.
	s.line(a.x0, top, a.x0, bottom, axisColor, 1)
	s.line(a.x0, bottom, a.x1, bottom, axisColor, 1)
	s.text((a.x0+a.x1)/2, bottom+axisH-4, captionStyle, p.caption)
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

// minTickSpacing is the least distance in px between the centres of two
// tick labels: the widest, "500 ms", and a gap.
func minTickSpacing() float64 { return textWidth("500 ms", tickSize, false) + 10 }

// timeTicks marks a log time axis from lo to hi seconds, width px wide:
// every integer multiple of a power of ten, labelled at 1, 2 and 5 where
// the labels fit, else at 1 and 3, else at decades, else at every second,
// third... decade.
func timeTicks(lo, hi, width float64) []tick {
	if !(lo > 0) || !(hi > lo) || math.IsInf(hi, 0) || !(width > 0) {
		return nil
	}
	perDecade := width / math.Log10(hi/lo) // px
	space := minTickSpacing()
	labelled := map[int]bool{1: true}
	every := 1 // label every nth decade
	switch {
	case perDecade*math.Log10(2) >= space:
		labelled[2], labelled[5] = true, true
	case perDecade*math.Log10(3) >= space:
		labelled[3] = true
	default:
		every = int(math.Ceil(space / perDecade))
	}
	minor := perDecade >= 60
	var ticks []tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		dec := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := float64(m) * dec
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := tick{value: v}
			if labelled[m] && (m != 1 || int(e)%every == 0) {
				t.label = formatDuration(time.Duration(math.Round(v * 1e9)))
			} else if !minor {
				continue
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// mibStep is a round tick step giving about five ticks over span > 0.
func mibStep(span float64) float64 { return niceCeil(span / 5) }

// linearTicks marks a linear MiB axis at round steps.
func linearTicks(lo, hi float64) []tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return nil
	}
	step := mibStep(hi - lo)
	var ticks []tick
	for i := 0; ; i++ {
		v := lo + float64(i)*step
		if v > hi*(1+1e-9) {
			break
		}
		ticks = append(ticks, tick{value: v, label: trimFloat(v, 1)})
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
