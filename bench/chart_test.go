package bench

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func msec(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// sampleChart has the numbers of a nested-harness run of the container
// suite: four start-ups and five memory figures.
func sampleChart() Chart {
	return Chart{
		Title: "VM versus container: start-up and memory",
		Note:  "3 rounds, 512 MiB guests, nested, inside the harness's outer guest (software-emulated CPU: compare ratios, not times)",
		Bars: []ChartBar{
			{Label: "runc container on host, to process start", Group: "container",
				Times: Summary{N: 3, Min: msec(394), Median: msec(400), P95: msec(517)}},
			{Label: "govmm VM, to guest init", Group: "govmm",
				Times: Summary{N: 3, Min: msec(7380), Median: msec(7700), P95: msec(8130)}},
			{Label: "govmm VM + container, to process start", Group: "govmm",
				Times: Summary{N: 3, Min: msec(11_400), Median: msec(11_900), P95: msec(11_900)}},
			{Label: "QEMU microvm, to guest init", Group: "qemu",
				Times: Summary{N: 3, Min: msec(9080), Median: msec(9260), P95: msec(9690)}},
		},
		Memory: []ChartMemory{
			{Label: "runc + container process", Group: "container", MiB: 21},
			{Label: "govmm: VMM overhead", Group: "govmm", MiB: 14.7},
			{Label: "govmm: total, with guest RAM touched", Group: "govmm", MiB: 161},
			{Label: "QEMU microvm: VMM overhead", Group: "qemu", MiB: 58.4},
			{Label: "QEMU microvm: total, with guest RAM touched", Group: "qemu", MiB: 213},
		},
	}
}

// svgTexts checks that svg is well-formed XML with an <svg> root and
// returns the content of its <text> elements, unescaped, in order.
func svgTexts(t *testing.T, svg []byte) []string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	var (
		texts  []string
		inText bool
		root   string
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "SVG is not well-formed XML")
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
			if tok.Name.Local == "text" {
				inText = true
				texts = append(texts, "")
			}
		case xml.EndElement:
			if tok.Name.Local == "text" {
				inText = false
			}
		case xml.CharData:
			if inText {
				texts[len(texts)-1] += string(tok)
			}
		}
	}
	require.Equal(t, "svg", root, "root element")
	return texts
}

// TestChartSample renders the sample chart to $GOVMM_CHART_SAMPLE (an
// .svg path) for a person to look at, and edge cases next to it; skipped
// when that is unset.
func TestChartSample(t *testing.T) {
	path := os.Getenv("GOVMM_CHART_SAMPLE")
	if path == "" {
		t.Skip("set GOVMM_CHART_SAMPLE=/tmp/chart-sample.svg to render the sample chart")
	}
	require.NoError(t, WriteChart(path, sampleChart()))
	t.Logf("wrote %s", path)

	base := strings.TrimSuffix(path, filepath.Ext(path))
	skipped := sampleChart()
	skipped.Bars = append(skipped.Bars, ChartBar{Label: "crun container on host", Group: "container"})
	skipped.Bars[0].Times = Summary{N: 5, Min: msec(40), Median: msec(80), P95: msec(200)}
	skipped.Bars[1].Times = Summary{N: 5, Min: 18 * time.Second, Median: 24 * time.Second, P95: 41 * time.Second}
	for name, c := range map[string]Chart{
		"skipped": skipped,
		"empty":   {Title: "nothing measured"},
		"zeros": {Bars: []ChartBar{
			{Label: "all zero", Group: "govmm", Times: Summary{N: 3}},
			{Label: "zero min", Group: "qemu", Times: Summary{N: 3, Median: msec(5), P95: msec(9)}},
		}},
		"long": {
			Title: strings.Repeat("A very long title that goes on ", 8),
			Note:  strings.Repeat("a long note, ", 40),
			Bars: []ChartBar{{Label: strings.Repeat("WIDE LABEL ", 20), Group: strings.Repeat("group ", 30),
				Times: Summary{N: 1, Min: msec(1), Median: msec(2), P95: msec(900_000)}}},
			Memory: []ChartMemory{{Label: `<a & "b">`, Group: "g2", MiB: 12345}},
		},
	} {
		p := base + "-" + name + ".svg"
		require.NoError(t, WriteChart(p, c))
		t.Logf("wrote %s", p)
	}
}

func TestWriteChart(t *testing.T) {
	skipped := sampleChart()
	skipped.Bars = append(skipped.Bars, ChartBar{Label: "crun container on host", Group: "container"})

	zeros := Chart{Bars: []ChartBar{
		{Label: "all zero", Group: "govmm", Times: Summary{N: 3}},
		{Label: "zero min", Group: "qemu", Times: Summary{N: 3, Median: msec(5), P95: msec(9)}},
		{Label: "negative", Group: "qemu", Times: Summary{N: 3, Min: -msec(5), Median: -msec(3), P95: -msec(1)}},
	}, Memory: []ChartMemory{{Label: "nothing", MiB: 0}, {Label: "negative", MiB: -3}}}

	tests := []struct {
		name string
		c    Chart
		want []string // strings some <text> must contain, unescaped
		not  []string // strings no <text> may contain
	}{
		{"sample", sampleChart(), []string{
			"VM versus container: start-up and memory", "3 rounds, 512 MiB guests",
			"runc container on host, to process start", "govmm VM, to guest init",
			"govmm VM + container, to process start", "QEMU microvm, to guest init",
			"400 ms", "7.7 s", "12 s", "9.3 s",
			"Start-up time", "median (bar) and min–p95 (whisker), log scale",
			"Memory per instance", "21 MiB", "15 MiB", "161 MiB", "58 MiB", "213 MiB",
			"container", "govmm", "qemu",
			"200 ms", "500 ms", "1 s", "2 s", "5 s", "10 s", "20 s",
			"150", "250",
		}, []string{"skipped", "no measurements"}},
		{"skipped bar", skipped, []string{"crun container on host", "skipped", "400 ms"}, nil},
		{"all skipped", Chart{Title: "t", Bars: []ChartBar{{Label: "x"}, {Label: "y", Group: "g"}}},
			[]string{"t", "x", "y", "g", "skipped", "Start-up time"}, []string{"Memory per instance"}},
		// Negative times are clamped to 0, as is negative memory.
		{"zero durations", zeros, []string{"0 s", "5 ms", "negative", "0 MiB"}, []string{"-3 ms", "-3 MiB"}},
		{"empty", Chart{}, []string{"no measurements"}, []string{"Start-up time"}},
		{"title only", Chart{Title: "nothing yet"}, []string{"nothing yet", "no measurements"}, nil},
		{"memory only", Chart{Memory: sampleChart().Memory}, []string{"Memory per instance", "213 MiB"},
			[]string{"Start-up time"}},
		{"memory small", Chart{Memory: []ChartMemory{{Label: "m", Group: "govmm", MiB: 9.46}}}, []string{"9.5 MiB", "govmm"}, nil},
		{"bars only", Chart{Bars: sampleChart().Bars}, []string{"7.7 s", "Start-up time"}, []string{"Memory per instance"}},
		{"one bar", Chart{Bars: sampleChart().Bars[:1]}, []string{"400 ms", "container"}, nil},
		{"nested harness times", Chart{
			Note: "nested harness: absolute times distorted, compare ratios",
			Bars: []ChartBar{
				{Label: "runc", Group: "container", Times: Summary{N: 5, Min: msec(40), Median: msec(80), P95: msec(200)}},
				{Label: "qemu", Group: "qemu", Times: Summary{N: 5, Min: 20 * time.Second, Median: 31 * time.Second, P95: 48 * time.Second}},
			},
		}, []string{"80 ms", "31 s", "compare ratios", "1 s", "10 s"}, nil},
		{"no groups", Chart{Bars: []ChartBar{{Label: "a", Times: Summary{N: 1, Median: msec(3)}}}}, []string{"3 ms"}, nil},
		{"long strings", Chart{
			Title: strings.Repeat("title ", 100), Note: strings.Repeat("note ", 300) + "\nsecond",
			Bars:   []ChartBar{{Label: strings.Repeat("label ", 100), Group: strings.Repeat("g", 500), Times: Summary{N: 1, Median: time.Hour}}},
			Memory: []ChartMemory{{Label: strings.Repeat("m", 300), MiB: 1e9}},
		}, []string{"1000000000 MiB"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.svg")
			require.NoError(t, WriteChart(path, tt.c))
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(string(data), "<?xml"), "XML declaration")
			assert.Contains(t, string(data), `viewBox="0 0 960 `)
			assert.Contains(t, string(data), `font-family="Liberation Sans, Arial, Helvetica, sans-serif"`)
			texts := svgTexts(t, data)
			all := strings.Join(texts, "\n")
			for _, w := range tt.want {
				assert.Contains(t, all, w)
			}
			for _, w := range tt.not {
				assert.NotContains(t, all, w)
			}
		})
	}
}

func TestWriteChartEscapes(t *testing.T) {
	label := `a<b & "c" > 'd'`
	c := Chart{
		Title: `<script>alert("x")</script> & co`,
		Note:  "note </svg> & \x00 control",
		Bars: []ChartBar{
			{Label: label, Group: `<g&"1">`, Times: Summary{N: 1, Min: msec(1), Median: msec(2), P95: msec(3)}},
		},
		Memory: []ChartMemory{{Label: "m <&>", Group: `<g&"1">`, MiB: 4}},
	}
	path := filepath.Join(t.TempDir(), "e.svg")
	require.NoError(t, WriteChart(path, c))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	s := string(data)
	assert.NotContains(t, s, "<script")
	assert.NotContains(t, s, "<b ")
	assert.NotContains(t, s, "</svg> &")
	assert.Equal(t, 1, strings.Count(s, "</svg>"))
	texts := svgTexts(t, data)
	assert.Contains(t, texts, label)
	assert.Contains(t, texts, `<script>alert("x")</script> & co`)
	assert.Contains(t, texts, `<g&"1">`)
	assert.Contains(t, texts, "m <&>")
	assert.Contains(t, texts, "note </svg> & \uFFFD control", "invalid XML characters replaced")
}

func TestWriteChartOnlySVG(t *testing.T) {
	tests := []struct {
		name string
		want []string // in the error
	}{
		{"c.png", []string{"only SVG", ".svg", "rsvg-convert -o", "c.svg"}},
		{"c.PNG", []string{"only SVG", "rsvg-convert"}},
		{"c.pdf", []string{"only SVG", ".svg"}},
		{"c.jpg", []string{".svg"}},
		{"chart", []string{".svg"}},
		{"c.svg.txt", []string{".svg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.name)
			err := WriteChart(path, sampleChart())
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			_, err = os.Stat(path)
			assert.True(t, os.IsNotExist(err), "WriteChart left a file behind")
		})
	}
	// Upper case is still SVG.
	path := filepath.Join(t.TempDir(), "c.SVG")
	require.NoError(t, WriteChart(path, sampleChart()))
	// An unwritable path is an error, naming it.
	err := WriteChart(filepath.Join(t.TempDir(), "missing", "c.svg"), sampleChart())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing")
}

func TestTimeTicks(t *testing.T) {
	tests := []struct {
		name       string
		lo, hi     float64 // seconds
		width      float64 // px
		want       string  // the labels
		minorTicks bool
	}{
		{"sample", 0.2, 20, 560, "200 ms,500 ms,1 s,2 s,5 s,10 s,20 s", true},
		{"short", 0.02, 2, 560, "20 ms,50 ms,100 ms,200 ms,500 ms,1 s,2 s", true},
		{"three decades", 0.02, 20, 560, "20 ms,50 ms,100 ms,200 ms,500 ms,1 s,2 s,5 s,10 s,20 s", true},
		{"narrow: 1 and 3", 0.01, 10, 400, "10 ms,30 ms,100 ms,300 ms,1 s,3 s,10 s", true},
		{"nested harness", 0.02, 50, 400, "30 ms,100 ms,300 ms,1 s,3 s,10 s,30 s", true},
		{"decades", 0.001, 1000, 560, "1 ms,10 ms,100 ms,1 s,10 s,100 s,1000 s", true},
		{"every other decade", 1e-6, 1e4, 300, "1 µs,100 µs,10 ms,1 s,100 s,10000 s", false},
		{"microseconds", 0.0005, 0.005, 560, "500 µs,1 ms,2 ms,5 ms", true},
		{"zero low", 0, 1, 560, "", false},
		{"empty range", 1, 1, 560, "", false},
		{"no width", 0.1, 1, 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var labels []string
			minor := false
			for _, tk := range timeTicks(tt.lo, tt.hi, tt.width) {
				assert.GreaterOrEqual(t, tk.value, tt.lo*(1-1e-9))
				assert.LessOrEqual(t, tk.value, tt.hi*(1+1e-9))
				if tk.label == "" {
					minor = true
					continue
				}
				labels = append(labels, tk.label)
			}
			assert.Equal(t, tt.want, strings.Join(labels, ","))
			assert.Equal(t, tt.minorTicks, minor, "minor ticks")
		})
	}
}

func TestTimeRange(t *testing.T) {
	tests := []struct {
		lo, hi         float64
		wantLo, wantHi float64
	}{
		{0.394, 11.9, 0.2, 20},            // the sample
		{0.04, 48, 0.02, 50},              // nested harness
		{1.0, 1.5, 0.2, 2},                // at least a decade
		{0.005, 0.009, 0.001, 0.01},       // zero min
		{math.Inf(1), 0, 0.01, 1},         // nothing measured
		{0.002, 3600, 0.001, 5000},        // up to an hour
		{0.0004, 0.0004, 0.00005, 0.0005}, // one value
	}
	for _, tt := range tests {
		lo, hi := timeRange(tt.lo, tt.hi)
		assert.InDelta(t, tt.wantLo, lo, tt.wantLo*1e-9, "timeRange(%g, %g) low", tt.lo, tt.hi)
		assert.InDelta(t, tt.wantHi, hi, tt.wantHi*1e-9, "timeRange(%g, %g) high", tt.lo, tt.hi)
	}
}

func TestLinearTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   string
	}{
		{0, 250, "0,50,100,150,200,250"},
		{0, 1, "0,0.2,0.4,0.6,0.8,1"},
		{0, 30, "0,10,20,30"},
		{0, 0, ""},
	}
	for _, tt := range tests {
		var labels []string
		for _, tk := range linearTicks(tt.lo, tt.hi) {
			labels = append(labels, tk.label)
		}
		assert.Equal(t, tt.want, strings.Join(labels, ","), "linearTicks(%g, %g)", tt.lo, tt.hi)
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 s"},
		{-msec(42), "-42 ms"},
		{850, "850 ns"},
		{850 * time.Microsecond, "850 µs"},
		{1500 * time.Microsecond, "1.5 ms"},
		{msec(42), "42 ms"},
		{msec(42.4), "42 ms"},
		{msec(9.96), "10 ms"},
		{msec(400), "400 ms"},
		{msec(999.7), "1 s"},
		{time.Second, "1 s"},
		{msec(1200), "1.2 s"},
		{msec(3140), "3.1 s"},
		{msec(7700), "7.7 s"},
		{msec(11_900), "12 s"},
		{msec(45_300), "45 s"},
		{100 * time.Second, "100 s"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, formatDuration(tt.d), "formatDuration(%v)", tt.d)
	}
}

func TestFormatMiB(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0 MiB"},
		{6, "6 MiB"},
		{9.46, "9.5 MiB"},
		{14.7, "15 MiB"},
		{30.4, "30 MiB"},
		{120, "120 MiB"},
		{213, "213 MiB"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, formatMiB(tt.v), "formatMiB(%v)", tt.v)
	}
}

func TestShortenAndWrap(t *testing.T) {
	long := strings.Repeat("very long label ", 40)
	tests := []struct {
		name     string
		in       string
		w        float64 // px
		shortens bool
	}{
		{"fits", "govmm VM", 300, false},
		{"empty", "", 300, false},
		{"long", long, 300, true},
		{"one long word", strings.Repeat("x", 200), 300, true},
		{"too narrow for anything", "abc", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := shorten(tt.in, labelSize, false, tt.w)
			if !tt.shortens {
				assert.Equal(t, tt.in, got)
				return
			}
			assert.True(t, strings.HasSuffix(got, "…"), "%q ends in an ellipsis", got)
			if tt.w > 100 {
				assert.LessOrEqual(t, textWidth(got, labelSize, false), tt.w)
				assert.Greater(t, textWidth(got, labelSize, false), tt.w-3*labelSize, "a long prefix")
			}
		})
	}

	lines := wrap("one two three\nfour "+long, noteSize, false, 200, 3)
	require.Len(t, lines, 3)
	assert.Equal(t, "one two three", lines[0])
	assert.True(t, strings.HasSuffix(lines[2], "…"))
	for _, l := range lines {
		assert.LessOrEqual(t, textWidth(l, noteSize, false), 200.0)
	}
	assert.Empty(t, wrap("", noteSize, false, 200, 3))
	assert.Equal(t, []string{"short"}, wrap("  short \n", noteSize, false, 200, 3))

	assert.Equal(t, "a b c", rowLabel(" a\n b\tc ", 300), "labels are one line")
	assert.Greater(t, textWidth("WWW", 10, false), textWidth("iii", 10, false))
	assert.Greater(t, textWidth("abc", 10, true), textWidth("abc", 10, false))
}
