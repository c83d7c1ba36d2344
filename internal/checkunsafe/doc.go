// Package checkunsafe holds the test that keeps package unsafe where the
// style guide allows it: only in files named *_unsafe.go, and only in the
// packages that own the KVM ABI (kvm) and guest memory (memory).
package checkunsafe
