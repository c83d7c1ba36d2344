// Package ratelog wraps a log/slog logger so that a hostile guest cannot
// flood the host's log: each Logger emits at most a burst of records per
// window and counts the rest, reporting the count with the next record it
// lets through.
package ratelog
