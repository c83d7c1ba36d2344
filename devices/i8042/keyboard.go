package i8042

// keyboard is a minimal PS/2 keyboard on the controller's first port. It is
// guarded by its Controller's mutex.
type keyboard struct {
	param    byte // command waiting for its parameter byte, 0 if none
	scanning bool // enabled (0xf4) or disabled (0xf5)
	leds     byte
	rate     byte
	set      byte // scan code set, 1-3
	last     byte // last byte sent, for 0xfe (resend)
}

func (k *keyboard) reset() {
	*k = keyboard{scanning: true, set: kbdDefaultSet, last: kbdBATOK}
}

// receive handles one byte the host sent to the keyboard; send queues the
// keyboard's answers.
func (k *keyboard) receive(v byte, send func(byte)) {
	reply := func(bs ...byte) {
		for _, b := range bs {
			send(b)
			k.last = b
		}
	}
	if k.param != 0 {
		cmd := k.param
		k.param = 0
		switch {
		case cmd == kbdSetLEDs && v < 0x80:
			k.leds = v
			reply(kbdACK)
			return
		case cmd == kbdTypematic && v < 0x80:
			k.rate = v
			reply(kbdACK)
			return
		case cmd == kbdScanSet && v == 0:
			reply(kbdACK, k.set)
			return
		case cmd == kbdScanSet && v <= 3:
			k.set = v
			reply(kbdACK)
			return
		}
		// Not a parameter: a keyboard takes it as the next command.
	}
	switch {
	case v == kbdSetLEDs || v == kbdTypematic || v == kbdScanSet:
		k.param = v
		reply(kbdACK)
	case v == kbdEcho:
		reply(kbdEcho)
	case v == kbdReadID:
		reply(kbdACK, kbdID1, kbdID2)
	case v == kbdEnable:
		k.scanning = true
		reply(kbdACK)
	case v == kbdDisable || v == kbdDefaults:
		k.scanning = v == kbdDefaults
		k.leds, k.rate, k.set = 0, 0, kbdDefaultSet
		reply(kbdACK)
	case v >= 0xf7 && v <= 0xfd:
		// Scan-set-3 key-type commands: accepted, without effect.
		reply(kbdACK)
	case v == kbdResend:
		send(k.last)
	case v == kbdReset:
		k.reset()
		reply(kbdACK, kbdBATOK)
	default:
		reply(kbdNAK)
	}
}
