package transfer

import (
	"fmt"
	"sync/atomic"
)

// Stats counts what a copy did; safe for concurrent use and for reading
// while the copy runs (progress).
type Stats struct {
	ImagesCopied  atomic.Int64
	ImagesSkipped atomic.Int64 // everything was already there
	ImagesFailed  atomic.Int64

	BlobsCopied  atomic.Int64
	BlobsSkipped atomic.Int64
	BlobsMounted atomic.Int64
	BytesCopied  atomic.Int64
	BytesSkipped atomic.Int64
	BytesMounted atomic.Int64

	ManifestsPushed  atomic.Int64
	ManifestsSkipped atomic.Int64

	// BytesDone counts each distinct blob once, when the destination
	// first holds it: progress against the plan's unique bytes, which
	// mounts into further repositories must not push past 100%.
	BytesDone atomic.Int64

	// Live counts bytes read from sources so far, including attempts that
	// were retried: it drives the rate shown while copying.
	Live atomic.Int64
}

// Snapshot is a plain copy of Stats.
type Snapshot struct {
	ImagesCopied, ImagesSkipped, ImagesFailed int64
	BlobsCopied, BlobsSkipped, BlobsMounted   int64
	BytesCopied, BytesSkipped, BytesMounted   int64
	ManifestsPushed, ManifestsSkipped         int64
	BytesDone                                 int64
	Live                                      int64
}

// Snapshot reads every counter.
func (s *Stats) Snapshot() Snapshot {
	return Snapshot{
		ImagesCopied: s.ImagesCopied.Load(), ImagesSkipped: s.ImagesSkipped.Load(), ImagesFailed: s.ImagesFailed.Load(),
		BlobsCopied: s.BlobsCopied.Load(), BlobsSkipped: s.BlobsSkipped.Load(), BlobsMounted: s.BlobsMounted.Load(),
		BytesCopied: s.BytesCopied.Load(), BytesSkipped: s.BytesSkipped.Load(), BytesMounted: s.BytesMounted.Load(),
		ManifestsPushed: s.ManifestsPushed.Load(), ManifestsSkipped: s.ManifestsSkipped.Load(),
		BytesDone: s.BytesDone.Load(), Live: s.Live.Load(),
	}
}

// FormatBytes writes n with binary units, as the summaries show sizes.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
