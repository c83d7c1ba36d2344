package boot

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAMLPkgLength(t *testing.T) {
	// ACPI 6.3 §20.2.4: the encoded length includes the PkgLength bytes.
	tests := []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x01}},
		{8, []byte{0x09}},
		{62, []byte{0x3f}},                    // 63: the largest one-byte length
		{63, []byte{0x41, 0x04}},              // 65 = 0x041
		{86, []byte{0x48, 0x05}},              // 88 = 0x058
		{4093, []byte{0x4f, 0xff}},            // 4095: the largest two-byte length
		{4094, []byte{0x81, 0x00, 0x01}},      // 4097 = 0x01001
		{1<<20 - 4, []byte{0x8f, 0xff, 0xff}}, // 0xfffff
		{1<<20 - 3, []byte{0xc1, 0x00, 0x00, 0x01}},
		{1<<28 - 5, []byte{0xcf, 0xff, 0xff, 0xff}}, // 2^28-1: the limit
	}
	for _, tt := range tests {
		var a amlEncoder
		got := a.pkgLength(tt.n)
		require.NoError(t, a.err, "n=%d", tt.n)
		assert.Equal(t, tt.want, got, "n=%d", tt.n)
	}

	for _, n := range []int{-1, 1<<28 - 4, 1 << 30} {
		var a amlEncoder
		assert.Nil(t, a.pkgLength(n))
		assert.Error(t, a.err, "n=%d", n)
	}
}

func TestAMLNameString(t *testing.T) {
	tests := []struct {
		path string
		want []byte
	}{
		{"_S5_", []byte("_S5_")},
		{"_S5", []byte("_S5_")},
		{"PCI0", []byte("PCI0")},
		{`\_SB_`, []byte(`\_SB_`)},
		{`\_SB_.PCI0`, append([]byte{'\\', 0x2e}, "_SB_PCI0"...)},
		{"^^PCI0", []byte("^^PCI0")},
		{"A.B.C", append([]byte{0x2f, 3}, "A___B___C___"...)},
	}
	for _, tt := range tests {
		var a amlEncoder
		got := a.nameString(tt.path)
		require.NoError(t, a.err, tt.path)
		assert.Equal(t, tt.want, got, tt.path)
	}

	for _, path := range []string{"", `\`, "^", "ABCDE", "1ABC", "a", "A..B", "A.", `\^A`, "PC-0"} {
		var a amlEncoder
		a.nameString(path)
		assert.Error(t, a.err, "%q", path)
	}
}

func TestAMLInteger(t *testing.T) {
	tests := []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0x00}},
		{1, []byte{0x01}},
		{5, []byte{0x0a, 0x05}},
		{0xff, []byte{0x0a, 0xff}},
		{0x100, []byte{0x0b, 0x00, 0x01}},
		{0xffff, []byte{0x0b, 0xff, 0xff}},
		{0x10000, []byte{0x0c, 0x00, 0x00, 0x01, 0x00}},
		{0xfebfffff, []byte{0x0c, 0xff, 0xff, 0xbf, 0xfe}},
		{1 << 32, []byte{0x0e, 0, 0, 0, 0, 1, 0, 0, 0}},
	}
	for _, tt := range tests {
		var a amlEncoder
		assert.Equal(t, tt.want, a.integer(tt.v), "%#x", tt.v)
	}
}

func TestAMLEISAID(t *testing.T) {
	tests := []struct {
		id   string
		want []byte
	}{
		// The DWord 0x030AD041 that iasl emits for PNP0A03.
		{"PNP0A03", []byte{0x0c, 0x41, 0xd0, 0x0a, 0x03}},
		{"PNP0A08", []byte{0x0c, 0x41, 0xd0, 0x0a, 0x08}},
		{"PNP0501", []byte{0x0c, 0x41, 0xd0, 0x05, 0x01}},
	}
	for _, tt := range tests {
		var a amlEncoder
		got := a.eisaID(tt.id)
		require.NoError(t, a.err, tt.id)
		assert.Equal(t, tt.want, got, tt.id)
	}
	for _, id := range []string{"", "PNP0A0", "PNP0A030", "pnp0A03", "PN10A03", "PNP0G03", "PNP0a03"} {
		var a amlEncoder
		a.eisaID(id)
		assert.Error(t, a.err, "%q", id)
	}
}

// amlS5 is Name (_S5_, Package (0x04) { 0x05, 0x05, Zero, Zero }).
var amlS5 = []byte{
	0x08,               // NameOp
	'_', 'S', '5', '_', //     NameString _S5_
	0x12,       //             PackageOp
	0x08,       //             PkgLength: 8 bytes from here
	0x04,       //             NumElements
	0x0a, 0x05, //             BytePrefix 5: SLP_TYPa
	0x0a, 0x05, //             BytePrefix 5: SLP_TYPb
	0x00, //             Zero
	0x00, //             Zero
}

func TestAMLS5(t *testing.T) {
	var a amlEncoder
	got := s5Object(&a)
	require.NoError(t, a.err)
	assert.Equal(t, amlS5, got)
}

// amlPCI0 is the expected encoding of pciHostBridge, assembled by hand
// from ACPI 6.3 §20 and §6.4.
var amlPCI0 = concat([][]byte{
	{0x10, 0x49, 0x08},       // ScopeOp, PkgLength 0x089 (137)
	[]byte(`\_SB_`),          // NameString
	{0x5b, 0x82, 0x40, 0x08}, // DeviceOp, PkgLength 0x080 (128)
	[]byte("PCI0"),           // NameString
	{0x08}, []byte("_HID"),   // Name (_HID,
	{0x0c, 0x41, 0xd0, 0x0a, 0x03}, // EisaId ("PNP0A03"))
	{0x08}, []byte("_SEG"), {0x00},
	{0x08}, []byte("_BBN"), {0x00},
	{0x08}, []byte("_UID"), {0x00},
	{0x08}, []byte("_CRS"), // Name (_CRS,
	{0x11, 0x48, 0x05}, // BufferOp, PkgLength 0x058 (88)
	{0x0a, 0x54},       // BufferSize 84
	// WordBusNumber: producer, MinFixed, MaxFixed, 0x00-0xFF.
	{0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00,
		0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x01},
	// IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08).
	{0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08},
	// WordIO 0x0000-0x0CF7, EntireRange.
	{0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03,
		0x00, 0x00, 0x00, 0x00, 0xf7, 0x0c, 0x00, 0x00, 0xf8, 0x0c},
	// WordIO 0x0D00-0xFFFF, EntireRange.
	{0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03,
		0x00, 0x00, 0x00, 0x0d, 0xff, 0xff, 0x00, 0x00, 0x00, 0xf3},
	// DWordMemory NonCacheable ReadWrite 0xC0000000-0xFEBFFFFF.
	{0x87, 0x17, 0x00, 0x00, 0x0c, 0x01,
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0xc0,
		0xff, 0xff, 0xbf, 0xfe,
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0xc0, 0x3e},
	{0x79, 0x00}, // End Tag
})

func TestAMLPCIHostBridge(t *testing.T) {
	var a amlEncoder
	got := pciHostBridge(&a)
	require.NoError(t, a.err)
	assert.Len(t, amlPCI0, 138)
	assert.Equal(t, amlPCI0, got)
}

func TestAMLPCIRouting(t *testing.T) {
	var a amlEncoder
	got := pciRouting(&a)
	require.NoError(t, a.err)
	// ScopeOp, a 2-byte PkgLength, then the path \_SB_.PCI0 as a
	// DualNamePath, then Name (_PRT, Package with 124 elements.
	require.Greater(t, len(got), 20)
	assert.Equal(t, byte(0x10), got[0])
	assert.Equal(t, concat([][]byte{{'\\', 0x2e}, []byte("_SB_PCI0")}), got[3:13])
	assert.Equal(t, concat([][]byte{{0x08}, []byte("_PRT"), {0x12}}), got[13:19])
	i := bytes.Index(got, []byte{0x12, 0x0b, 0x04}) // the first entry: Package, PkgLength 11, 4 elements
	require.Positive(t, i)
	assert.Equal(t, []byte{
		0x12, 0x0b, 0x04,
		0x0c, 0xff, 0xff, 0x01, 0x00, // DWord 0x0001FFFF: slot 1
		0x00,       // Pin 0 (INTA#)
		0x00,       // Source Zero
		0x0a, 0x11, // GSI 17
	}, got[i:i+12])
	assert.Equal(t, 124, bytes.Count(got, []byte{0xff, 0xff}), "31 slots x 4 pins")
	for slot := 1; slot < 32; slot++ {
		for pin := range 4 {
			g := PCIINTxGSI(slot, pin)
			assert.True(t, g >= 16 && g <= 23, "slot %d pin %d: GSI %d is an IOAPIC PCI input", slot, pin, g)
		}
	}
	assert.NotEqual(t, PCIINTxGSI(1, 0), PCIINTxGSI(2, 0), "neighbours' INTA# differ")
}
