//go:build unix

package main

import "syscall"

// restrictNewFiles makes every file serve creates (metadata, its WAL,
// uploads, blobs, keys) private to the user it runs as.
func restrictNewFiles() { syscall.Umask(0o077) }
