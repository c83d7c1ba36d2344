// Package container runs a command in an OCI container with runc: it
// writes the bundle's config.json (OCI runtime spec 1.2, config.md and
// config-linux.md) and builds the runc command line. The guest agent uses
// it inside govmm's VMs and govmm uses it on the host, so the container on
// either side is the same container.
package container
