// Package devtest holds test doubles and helpers shared by the tests of the
// device models, the VMM, the harness and the command line.
package devtest
