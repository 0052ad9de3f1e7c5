package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-mirror/ferry/internal/oci"
)

// Item is one manifest tree to copy: an image, a signature, a referrer.
type Item struct {
	SrcRepo string
	DstRepo string
	// Ref is the destination tag; empty pushes by digest.
	Ref    string
	Digest digest.Digest
}

// Job is one image of the plan with everything that travels with it.
// Items are copied in order; the first is the image itself.
type Job struct {
	Name  string // the source reference, for reports
	Items []Item
}

// Result is the outcome of one Job.
type Result struct {
	Job    Job
	Copied bool // something was pushed; false with Err nil means it was all there
	Err    error
}

// Engine copies jobs from a Source to a Dest: manifests after their
// children and blobs, every blob read once and written once per
// destination, then mounted into further repositories.
type Engine struct {
	Src Source
	Dst Dest
	// Known returns manifests read in advance (by the planner), consulted
	// before Src; nil when there are none.
	Known          func(digest.Digest) (Manifest, bool)
	ParallelImages int
	ParallelLayers int
	// ImageTimeout bounds one job, retries included; 0 is no bound.
	ImageTimeout time.Duration
	Retry        Retry
	Log          *slog.Logger
	Stats        *Stats

	once  sync.Once
	sem   chan struct{}
	mu    sync.Mutex
	blobs map[digest.Digest]*blobState
}

type blobState struct {
	done  chan struct{} // closed when the first placement ends
	err   error         // the first placement's
	repos []string      // destination repositories known to hold the blob
	// placing holds the repositories a later placement is under way in,
	// each with a channel closed when it ends.
	placing map[string]chan struct{}
}

func (e *Engine) init() {
	e.once.Do(func() {
		if e.ParallelImages < 1 {
			e.ParallelImages = 1
		}
		if e.ParallelLayers < 1 {
			e.ParallelLayers = 1
		}
		if e.Log == nil {
			e.Log = slog.New(slog.DiscardHandler)
		}
		if e.Stats == nil {
			e.Stats = &Stats{}
		}
		e.sem = make(chan struct{}, e.ParallelImages*e.ParallelLayers)
		e.blobs = map[digest.Digest]*blobState{}
	})
}

// Present records that the destination already holds blob d in repo, so
// other repositories mount it from there (d2m of a differential archive).
func (e *Engine) Present(d digest.Digest, repo string) {
	e.init()
	st := &blobState{done: make(chan struct{}), repos: []string{repo}}
	close(st.done)
	e.mu.Lock()
	e.blobs[d] = st
	e.mu.Unlock()
}

// Run copies every job, ParallelImages at a time, and returns one result
// per job in order. One job failing does not stop the others.
func (e *Engine) Run(ctx context.Context, jobs []Job) []Result {
	e.init()
	results := make([]Result, len(jobs))
	var g errgroup.Group
	g.SetLimit(e.ParallelImages)
	for i, j := range jobs {
		g.Go(func() error {
			results[i] = e.RunJob(ctx, j)
			return nil
		})
	}
	_ = g.Wait()
	return results
}

// RunJob copies one job; callers that schedule jobs themselves bound how
// many run at once.
func (e *Engine) RunJob(ctx context.Context, j Job) Result {
	e.init()
	return e.runJob(ctx, j)
}

type jobRun struct {
	name   string
	pushed atomic.Int64
}

func (e *Engine) runJob(ctx context.Context, j Job) Result {
	run := &jobRun{name: j.Name}
	jctx := ctx
	if e.ImageTimeout > 0 {
		var cancel context.CancelFunc
		jctx, cancel = context.WithTimeout(ctx, e.ImageTimeout)
		defer cancel()
	}
	var err error
	for _, it := range j.Items {
		if err = e.copyTree(jctx, run, it.SrcRepo, it.DstRepo, it.Ref, it.Digest); err != nil {
			break
		}
	}
	if err != nil && ctx.Err() == nil && errors.Is(jctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("image %s: not copied within --image-timeout %s; raise it for large images or slow links: %w", j.Name, e.ImageTimeout, err)
	}
	res := Result{Job: j, Copied: run.pushed.Load() > 0, Err: err}
	switch {
	case err != nil:
		e.Stats.ImagesFailed.Add(1)
		e.Log.Error("image failed", "image", j.Name, "error", err)
	case res.Copied:
		e.Stats.ImagesCopied.Add(1)
		e.Log.Debug("image copied", "image", j.Name)
	default:
		e.Stats.ImagesSkipped.Add(1)
		e.Log.Debug("image already present", "image", j.Name)
	}
	return res
}

func (e *Engine) manifest(ctx context.Context, repo string, d digest.Digest) (Manifest, error) {
	if e.Known != nil {
		if m, ok := e.Known(d); ok {
			return m, nil
		}
	}
	var m Manifest
	err := e.retry(ctx, func() error {
		var err error
		m, err = e.Src.Manifest(ctx, repo, d)
		return err
	})
	return m, err
}

// copyTree copies manifest d and everything below it, then stores it
// under ref (its digest when ref is empty). A manifest already stored
// under ref is complete, because nothing is stored before its children.
func (e *Engine) copyTree(ctx context.Context, run *jobRun, src, dst, ref string, d digest.Digest) error {
	if ref == "" {
		ref = d.String()
	}
	if ok, err := e.Dst.HasManifest(ctx, dst, ref, d); err != nil {
		return err
	} else if ok {
		e.Stats.ManifestsSkipped.Add(1)
		return nil
	}
	m, err := e.manifest(ctx, src, d)
	if err != nil {
		return fmt.Errorf("image %s: manifest %s: %w", run.name, d, err)
	}
	p, err := m.Parse()
	if err != nil {
		return &PermanentError{fmt.Errorf("image %s: %w", run.name, err)}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range p.Children {
		g.Go(func() error { return e.copyTree(gctx, run, src, dst, "", c.Digest) })
	}
	for _, b := range p.Blobs() {
		if !oci.Distributable(b) {
			continue
		}
		g.Go(func() error { return e.copyBlob(gctx, run, src, dst, b) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := e.retry(ctx, func() error {
		_, err := e.Dst.PutManifest(ctx, dst, ref, m)
		return err
	}); err != nil {
		return fmt.Errorf("image %s: %w", run.name, err)
	}
	run.pushed.Add(1)
	e.Stats.ManifestsPushed.Add(1)
	return nil
}

// copyBlob makes blob b present in dst: skipped when there, mounted when
// this run already put it in another repository, uploaded otherwise.
// Concurrent requests for one digest wait for the first, and concurrent
// requests for one digest in one repository wait for the one mounting it
// there. A second mount into a repository that holds the blob would not be
// harmless: CNCF distribution rewrites the repository's link file for it,
// and a manifest of that repository checked at that moment fails as
// DIGEST_INVALID.
func (e *Engine) copyBlob(ctx context.Context, run *jobRun, src, dst string, b ocispec.Descriptor) error {
	e.mu.Lock()
	st, seen := e.blobs[b.Digest]
	if !seen {
		st = &blobState{done: make(chan struct{})}
		e.blobs[b.Digest] = st
		e.mu.Unlock()
		err := e.ensureBlob(ctx, run, src, dst, b, "")
		e.mu.Lock()
		st.err = err
		if err == nil {
			st.repos = append(st.repos, dst)
			e.Stats.BytesDone.Add(b.Size)
		} else {
			delete(e.blobs, b.Digest) // let a later image try again
		}
		e.mu.Unlock()
		close(st.done)
		return err
	}
	e.mu.Unlock()
	if err := waitFor(ctx, st.done); err != nil {
		return err
	}
	for {
		e.mu.Lock()
		if slices.Contains(st.repos, dst) {
			e.mu.Unlock()
			// Another image of this run already put it in this repository:
			// no request, and not "already present" either, which counts
			// only what the destination held before the run.
			return nil
		}
		if busy, ok := st.placing[dst]; ok {
			e.mu.Unlock()
			if err := waitFor(ctx, busy); err != nil {
				return err
			}
			continue // placed, or failed and free for this one to try
		}
		from := ""
		if st.err == nil && len(st.repos) > 0 {
			from = st.repos[0]
		}
		busy := make(chan struct{})
		if st.placing == nil {
			st.placing = map[string]chan struct{}{}
		}
		st.placing[dst] = busy
		e.mu.Unlock()
		err := e.ensureBlob(ctx, run, src, dst, b, from)
		e.mu.Lock()
		delete(st.placing, dst)
		if err == nil {
			st.repos = append(st.repos, dst)
		}
		e.mu.Unlock()
		close(busy)
		return err
	}
}

// waitFor waits until ch is closed or ctx ends.
func waitFor(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ensureBlob makes blob b present in dst with as few requests as it
// can: a mount, from the repository this run already put it in or else
// from dst itself, which both tells whether dst holds it and opens the
// upload session when it does not. An endpoint that refuses mounts gets
// a HEAD, then an upload.
func (e *Engine) ensureBlob(ctx context.Context, run *jobRun, src, dst string, b ocispec.Descriptor, from string) error {
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-e.sem }()
	if from == "" {
		from = dst
	}
	mounted, session, err := e.Dst.Mount(ctx, dst, from, b.Digest)
	switch {
	case err == nil && mounted && from == dst:
		e.Stats.BlobsSkipped.Add(1)
		e.Stats.BytesSkipped.Add(b.Size)
		return nil
	case err == nil && mounted:
		e.Stats.BlobsMounted.Add(1)
		e.Stats.BytesMounted.Add(b.Size)
		return nil
	case err != nil:
		e.Log.Debug("mount refused, checking and uploading", "blob", b.Digest, "from", from, "to", dst, "error", err)
		var has bool
		if err := e.retry(ctx, func() (err error) { has, err = e.Dst.HasBlob(ctx, dst, b.Digest); return err }); err != nil {
			return fmt.Errorf("image %s: blob %s: %w", run.name, b.Digest, err)
		}
		if has {
			e.Stats.BlobsSkipped.Add(1)
			e.Stats.BytesSkipped.Add(b.Size)
			return nil
		}
	}
	err = e.retry(ctx, func() error {
		s := session
		session = "" // a retry opens a new session; the first may be broken
		return e.upload(ctx, run, src, dst, b, s)
	})
	if err != nil {
		return fmt.Errorf("image %s: blob %s: %w", run.name, b.Digest, err)
	}
	e.Stats.BlobsCopied.Add(1)
	e.Stats.BytesCopied.Add(b.Size)
	return nil
}

func (e *Engine) upload(ctx context.Context, run *jobRun, src, dst string, b ocispec.Descriptor, session string) error {
	rc, size, err := e.Src.Blob(ctx, src, b.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	want := b.Size
	if want < 0 {
		want = size
	}
	if want < 0 {
		return &PermanentError{fmt.Errorf("size of blob %s unknown", b.Digest)}
	}
	if size >= 0 && size != want {
		return &DigestError{Image: run.name, Blob: b.Digest, Size: want, Read: size}
	}
	v := newVerifier(rc, b.Digest, want, run.name, &e.Stats.Live)
	if err := e.Dst.PutBlob(ctx, dst, b.Digest, want, v, session); err != nil {
		var de *DigestError
		if v.err != nil && errors.As(v.err, &de) {
			return v.err
		}
		if (v.err == nil || v.err == io.EOF) && lostUpload(err) {
			// The bytes sent had the right digest, so the registry lost
			// or doubled them on the way: a request resent by a balancer
			// after a replica died, or a session purged. A fresh session
			// fixes both.
			return &freshUpload{err}
		}
		return err
	}
	if v.err != nil && v.err != io.EOF {
		return v.err
	}
	return nil
}

// retry runs f until it succeeds, fails for good, or runs out of tries.
func (e *Engine) retry(ctx context.Context, f func() error) error {
	return e.Retry.Do(ctx, Temporary, func(n int, err error) { e.Log.Warn("retrying", "attempt", n+1, "error", err) }, f)
}

// Temporary reports whether err may go away on another try: network
// trouble, 429, 5xx and corrupted transfers, but not 4xx answers, a
// cancelled run or a malformed manifest.
func Temporary(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var fu *freshUpload
	if errors.As(err, &fu) {
		return true
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Temporary()
	}
	var pe *PermanentError
	return !errors.As(err, &pe)
}

// lostUpload reports a registry refusing an upload session it should have
// accepted: DIGEST_INVALID or BLOB_UPLOAD_UNKNOWN.
func lostUpload(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && (he.Code == "DIGEST_INVALID" || he.Code == "BLOB_UPLOAD_UNKNOWN")
}

// freshUpload is an upload to retry in a new session (ensureBlob opens one
// on every retry).
type freshUpload struct{ err error }

func (e *freshUpload) Error() string {
	return e.err.Error() + " (the bytes sent were right; retrying in a new upload session)"
}
func (e *freshUpload) Unwrap() error { return e.err }

// PermanentError marks a failure that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }
