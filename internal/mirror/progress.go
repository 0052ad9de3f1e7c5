package mirror

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// progress shows the copy as it goes: one redrawn line on a terminal
// (hand-written: a single line needs no library), a structured log line
// every few seconds otherwise.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
	// The totals are unknown (images -1) while copying starts ahead of
	// the plan.
	images atomic.Int64
	total  atomic.Int64
}

// setTotals gives the number of images and unique blob bytes to copy.
func (p *progress) setTotals(images int, total int64) {
	p.images.Store(int64(images))
	p.total.Store(total)
}

func startProgress(o Options, log *slog.Logger, st *transfer.Stats) *progress {
	p := &progress{done: make(chan struct{})}
	p.images.Store(-1)
	every := 5 * time.Second
	if o.Terminal && o.Progress != nil {
		every = 250 * time.Millisecond
	}
	start := time.Now()
	draw := func(final bool) {
		s := st.Snapshot()
		images, total := p.images.Load(), p.total.Load()
		el := time.Since(start).Seconds()
		rate := float64(s.Live) / max(el, 0.001)
		moved := s.BytesDone
		eta, of, ofBytes := "-", "?", "?"
		if images >= 0 {
			of, ofBytes = strconv.FormatInt(images, 10), transfer.FormatBytes(total)
			if rate > 0 && total > moved {
				eta = time.Duration(float64(total-moved) / rate * float64(time.Second)).Round(time.Second).String()
			}
		}
		doneImgs := s.ImagesCopied + s.ImagesSkipped + s.ImagesFailed
		if o.Terminal && o.Progress != nil {
			end := ""
			if final {
				end = "\n"
			}
			fmt.Fprintf(o.Progress, "\r\033[Kimages %d/%s  %s / %s  %s/s  ETA %s%s",
				doneImgs, of, transfer.FormatBytes(moved), ofBytes, transfer.FormatBytes(int64(rate)), eta, end)
			return
		}
		if !final {
			log.Info("progress", "images", doneImgs, "of", images, "bytes", moved, "total", total, "rate_bytes_per_s", int64(rate), "failed", s.ImagesFailed)
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				draw(true)
				return
			case <-t.C:
				draw(false)
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

// summary prints the final account of the run.
func (r *run) summary(p *plan.Plan) {
	s := r.stats.Snapshot()
	el := time.Since(r.started)
	fmt.Fprintf(r.o.Out, "images: %d copied, %d already present, %d failed, %d missing, %d blocked\n",
		s.ImagesCopied, s.ImagesSkipped, s.ImagesFailed, len(p.Missing), len(p.Blocked))
	fmt.Fprintf(r.o.Out, "blobs: %d copied (%s), %d mounted (%s), %d already present (%s); manifests: %d pushed, %d present\n",
		s.BlobsCopied, transfer.FormatBytes(s.BytesCopied), s.BlobsMounted, transfer.FormatBytes(s.BytesMounted), s.BlobsSkipped, transfer.FormatBytes(s.BytesSkipped),
		s.ManifestsPushed, s.ManifestsSkipped)
	fmt.Fprintf(r.o.Out, "time: %s (%s/s)\n", el.Round(time.Millisecond), transfer.FormatBytes(int64(float64(s.BytesCopied)/max(el.Seconds(), 0.001))))
	r.log.Info("summary", "images_copied", s.ImagesCopied, "images_present", s.ImagesSkipped, "images_failed", s.ImagesFailed,
		"missing", len(p.Missing), "blocked", len(p.Blocked), "blobs_copied", s.BlobsCopied, "bytes_copied", s.BytesCopied,
		"blobs_mounted", s.BlobsMounted, "blobs_present", s.BlobsSkipped, "manifests_pushed", s.ManifestsPushed, "seconds", el.Seconds())
}
