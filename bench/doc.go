// Package bench measures VM boots: launch to the guest's init and launch
// to exit, and the VMM's own memory (resident memory less the guest RAM
// it backs), for govmm and for a peer VMM run the same way, so their ratio
// means something even where absolute timings do not (the nested harness).
package bench
