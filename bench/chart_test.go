package bench

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot/vg"
)

func msec(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// sampleChart has plausible numbers for the four start-ups and three
// memory figures.
func sampleChart() Chart {
	return Chart{
		Title: "govmm bench: start-up time and memory",
		Note:  "10 runs each; host: 8 vCPU, KVM",
		Bars: []ChartBar{
			{Label: "runc container on host", Group: "container",
				Times: Summary{N: 10, Min: msec(52), Median: msec(60), P95: msec(74)}},
			{Label: "govmm VM to guest init", Group: "govmm",
				Times: Summary{N: 10, Min: msec(1080), Median: msec(1200), P95: msec(1390)}},
			{Label: "govmm VM + container to process start", Group: "govmm",
				Times: Summary{N: 10, Min: msec(1450), Median: msec(1600), P95: msec(1830)}},
			{Label: "QEMU microvm to init", Group: "qemu",
				Times: Summary{N: 10, Min: msec(1310), Median: msec(1500), P95: msec(1720)}},
		},
		Memory: []ChartMemory{
			{Label: "runc container", Group: "container", MiB: 6},
			{Label: "govmm VM", Group: "govmm", MiB: 9},
			{Label: "QEMU microvm", Group: "qemu", MiB: 30},
		},
	}
}

// TestChartSample renders the sample chart to $GOVMM_CHART_SAMPLE (a .png
// or .svg path) for a person to look at; skipped when that is unset.
func TestChartSample(t *testing.T) {
	path := os.Getenv("GOVMM_CHART_SAMPLE")
	if path == "" {
		t.Skip("set GOVMM_CHART_SAMPLE=/tmp/chart-sample.png to render the sample chart")
	}
	if err := WriteChart(path, sampleChart()); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
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
		{msec(999.7), "1 s"},
		{time.Second, "1 s"},
		{msec(1200), "1.2 s"},
		{msec(3140), "3.1 s"},
		{msec(45_300), "45 s"},
		{100 * time.Second, "100 s"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
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
		{30.4, "30 MiB"},
		{120, "120 MiB"},
	}
	for _, tt := range tests {
		if got := formatMiB(tt.v); got != tt.want {
			t.Errorf("formatMiB(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestDurationTicksLabels(t *testing.T) {
	tests := []struct {
		lo, hi float64 // seconds
		want   string
	}{
		{0.02, 2, "20 ms,50 ms,100 ms,200 ms,500 ms,1 s,2 s"},
		{0.01, 10, "10 ms,30 ms,100 ms,300 ms,1 s,3 s,10 s"},
		{0.001, 1000, "1 ms,10 ms,100 ms,1 s,10 s,100 s,1000 s"},
		{0.0005, 0.005, "500 µs,1 ms,2 ms,5 ms"},
		{0, 1, ""},
		{1, 1, ""},
	}
	for _, tt := range tests {
		var labels []string
		for _, tk := range (durationTicks{}).Ticks(tt.lo, tt.hi) {
			if tk.Value < tt.lo || tk.Value > tt.hi*(1+1e-9) {
				t.Errorf("%g..%g: tick %g out of range", tt.lo, tt.hi, tk.Value)
			}
			if !tk.IsMinor() {
				labels = append(labels, tk.Label)
			}
		}
		if got := strings.Join(labels, ","); got != tt.want {
			t.Errorf("labels over %g..%g s = %s, want %s", tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestFitText(t *testing.T) {
	long := strings.Repeat("very long label ", 40)
	tests := []struct {
		in       string
		w        float64 // points
		want     string  // "" for: shortened, ends in an ellipsis
		shortens bool
	}{
		{in: "govmm VM", w: 300, want: "govmm VM"},
		{in: "", w: 300, want: ""},
		{in: long, w: 300, shortens: true},
		{in: "a\n" + long, w: 300, shortens: true},
	}
	for _, tt := range tests {
		got := fitText(labelStyle, tt.in, vg.Length(tt.w))
		if !tt.shortens {
			if got != tt.want {
				t.Errorf("fitText(%q) = %q, want it unchanged", tt.in, got)
			}
			continue
		}
		for _, line := range strings.Split(got, "\n") {
			if w := labelStyle.Width(line); w > vg.Length(tt.w) {
				t.Errorf("fitText(%.20q…): line %q is %v wide, want at most %v", tt.in, line, w, tt.w)
			}
		}
		if !strings.HasSuffix(got, "…") || len(got) < 20 {
			t.Errorf("fitText(%.20q…) = %q, want a long prefix and an ellipsis", tt.in, got)
		}
	}
}

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

func TestWriteChart(t *testing.T) {
	skipped := sampleChart()
	skipped.Bars = append(skipped.Bars, ChartBar{Label: "crun container on host", Group: "container"})

	zeros := Chart{Bars: []ChartBar{
		{Label: "all zero", Group: "govmm", Times: Summary{N: 3}},
		{Label: "zero min", Group: "qemu", Times: Summary{N: 3, Median: msec(5), P95: msec(9)}},
	}, Memory: []ChartMemory{{Label: "nothing", MiB: 0}}}

	tests := []struct {
		name string
		file string
		c    Chart
		want []string // text the SVG must contain
	}{
		{"sample svg", "c.svg", sampleChart(), []string{
			"govmm bench: start-up time and memory", "10 runs each",
			"runc container on host", "govmm VM to guest init",
			"govmm VM + container to process start", "QEMU microvm to init",
			"60 ms", "1.2 s", "1.6 s", "1.5 s",
			"Memory per instance", "6 MiB", "9 MiB", "30 MiB",
			"container", "govmm", "qemu",
			// Text keeps its Liberation Sans layout in other fonts.
			"textLength=", `text-anchor="end"`,
		}},
		{"sample png", "c.png", sampleChart(), nil},
		{"upper-case extension", "c.PNG", sampleChart(), nil},
		{"skipped bar svg", "s.svg", skipped, []string{"crun container on host", "skipped", "60 ms"}},
		{"skipped bar png", "s.png", skipped, nil},
		{"all skipped", "a.svg", Chart{Title: "t", Bars: []ChartBar{{Label: "x"}, {Label: "y", Group: "g"}}},
			[]string{"skipped"}},
		{"zero durations", "z.svg", zeros, []string{"0 s", "5 ms", "0 MiB"}},
		{"zero durations png", "z.png", zeros, nil},
		{"empty", "e.svg", Chart{}, []string{"no measurements"}},
		{"empty png", "e.png", Chart{Title: "nothing yet"}, nil},
		{"memory only", "m.svg", Chart{Memory: sampleChart().Memory}, []string{"30 MiB"}},
		{"bars only", "b.png", Chart{Bars: sampleChart().Bars}, nil},
		{"one bar", "o.svg", Chart{Bars: sampleChart().Bars[:1]}, []string{"60 ms"}},
		{"nested harness times", "n.svg", Chart{
			Note: "nested harness: absolute times distorted, compare ratios",
			Bars: []ChartBar{
				{Label: "runc", Group: "container", Times: Summary{N: 5, Min: msec(40), Median: msec(80), P95: msec(200)}},
				{Label: "qemu", Group: "qemu", Times: Summary{N: 5, Min: 20 * time.Second, Median: 31 * time.Second, P95: 48 * time.Second}},
			},
		}, []string{"80 ms", "31 s", "compare ratios"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.file)
			if err := WriteChart(path, tt.c); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) == 0 {
				t.Fatal("empty file")
			}
			switch strings.ToLower(filepath.Ext(tt.file)) {
			case ".svg":
				s := string(data)
				if !strings.HasPrefix(s, "<?xml") || !strings.Contains(s, "<svg") {
					t.Fatalf("not an SVG: %.80q", s)
				}
				for _, w := range tt.want {
					if !strings.Contains(s, w) {
						t.Errorf("SVG lacks %q", w)
					}
				}
			case ".png":
				if !bytes.HasPrefix(data, pngMagic) {
					t.Fatalf("no PNG magic: % x", data[:min(8, len(data))])
				}
				img, err := png.Decode(bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				b := img.Bounds()
				if b.Dx() < 800 || b.Dx() > 4000 || b.Dy() < 100 || b.Dy() > 4000 {
					t.Errorf("PNG is %dx%d", b.Dx(), b.Dy())
				}
			}
		})
	}
}

func TestWriteChartUnknownExtension(t *testing.T) {
	for _, name := range []string{"c.pdf", "c.jpg", "chart", "c.svg.txt"} {
		path := filepath.Join(t.TempDir(), name)
		err := WriteChart(path, sampleChart())
		if err == nil {
			t.Errorf("WriteChart(%s): no error", name)
			continue
		}
		if !strings.Contains(err.Error(), ".svg") || !strings.Contains(err.Error(), ".png") {
			t.Errorf("WriteChart(%s) = %v, want it to name .svg and .png", name, err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("WriteChart(%s) left a file behind", name)
		}
	}
}

// TestChartVariants renders edge cases next to the sample, for a person
// to look at; skipped unless GOVMM_CHART_SAMPLE is set.
func TestChartVariants(t *testing.T) {
	path := os.Getenv("GOVMM_CHART_SAMPLE")
	if path == "" {
		t.Skip("set GOVMM_CHART_SAMPLE to render")
	}
	base := strings.TrimSuffix(path, filepath.Ext(path))
	skipped := sampleChart()
	skipped.Note = "nested harness: absolute times distorted, compare ratios"
	skipped.Bars = append(skipped.Bars, ChartBar{Label: "crun container on host", Group: "container"})
	skipped.Bars[1].Times = Summary{N: 5, Min: 18 * time.Second, Median: 24 * time.Second, P95: 41 * time.Second}
	for name, c := range map[string]Chart{
		"skipped": skipped,
		"empty":   {Title: "nothing measured"},
		"zeros": {Bars: []ChartBar{
			{Label: "all zero", Group: "govmm", Times: Summary{N: 3}},
			{Label: "zero min", Group: "qemu", Times: Summary{N: 3, Median: msec(5), P95: msec(9)}},
		}},
	} {
		if err := WriteChart(base+"-"+name+".png", c); err != nil {
			t.Error(err)
		}
	}
}
