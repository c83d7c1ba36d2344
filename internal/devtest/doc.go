// Package devtest holds test doubles shared by the device models' tests.
package devtest
