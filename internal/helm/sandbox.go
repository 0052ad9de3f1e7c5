package helm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/metrics"
	"sort"
	"strings"
	"time"

	chart "helm.sh/helm/v4/pkg/chart/v2"
)

// Defaults of a Sandbox.
const (
	DefaultRenderTimeout = 30 * time.Second
	DefaultRenderMemory  = 128 << 20
)

// RenderCommand is the hidden ferry subcommand that runs ServeRender.
const RenderCommand = "helm-render"

// Job is one chart to read images from: a chart folder or .tgz on disk
// (Path), or a downloaded .tgz (Archive).
type Job struct {
	Path       string         `json:"path,omitempty"`
	Archive    []byte         `json:"archive,omitempty"`
	Values     map[string]any `json:"values,omitempty"`
	ImagePaths []string       `json:"imagePaths,omitempty"`
	MaxMemory  int64          `json:"maxMemory,omitempty"`
}

// Result is what a Job found.
type Result struct {
	Chart   string `json:"chart"`
	Version string `json:"version"`
	// Templates names every template of the chart and its subcharts, as
	// Helm names them (chart/charts/sub/templates/x.yaml), partials
	// included; known once the chart loaded, even when it does not render.
	Templates []string `json:"templates,omitempty"`
	Found
}

// Sandbox renders charts, which are code from elsewhere, in a child
// process it can stop: text/template cannot be interrupted, so a template
// that loops or allocates without end would otherwise keep the mirror
// busy and growing until it exits. The child is the ferry binary itself
// (Exe, running RenderCommand), killed after Timeout, on ctx
// cancellation (Ctrl-C), and ending itself when its memory passes
// MaxMemory. With no Exe (tests, library use) charts render in this
// process and Timeout only stops the wait.
type Sandbox struct {
	Exe       string
	Timeout   time.Duration
	MaxMemory int64
}

// ChartError is a chart that does not load or render: the chart's
// fault, unlike a cancelled run or a child that could not start.
type ChartError struct{ Msg string }

func (e *ChartError) Error() string { return e.Msg }

// Run loads, renders and searches one chart.
func (s Sandbox) Run(ctx context.Context, job Job) (*Result, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultRenderTimeout
	}
	job.MaxMemory = s.MaxMemory
	if job.MaxMemory <= 0 {
		job.MaxMemory = DefaultRenderMemory
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res *Result
	var err error
	if s.Exe == "" {
		res, err = inProcess(rctx, job)
	} else {
		res, err = s.child(rctx, job)
	}
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(rctx.Err(), context.DeadlineExceeded) && err != nil:
		return nil, &ChartError{Msg: fmt.Sprintf("rendering did not finish within %s: a template loops or fans out without end (Ferry stopped it)", timeout)}
	}
	return res, err
}

func inProcess(ctx context.Context, job Job) (*Result, error) {
	type out struct {
		res *Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := job.run(ctx)
		done <- out{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run does the work, in whichever process.
func (job Job) run(ctx context.Context) (*Result, error) {
	var c *chart.Chart
	var err error
	if job.Path != "" {
		c, err = Load(job.Path)
	} else {
		c, err = LoadArchive(job.Archive)
	}
	if err != nil {
		return nil, &ChartError{Msg: err.Error()}
	}
	res := &Result{Chart: c.Name(), Version: c.Metadata.Version, Templates: templateNames(c, c.Name())}
	ms, err := Render(ctx, c, job.Values)
	if err != nil {
		return res, &ChartError{Msg: err.Error()}
	}
	f, err := Images(ms, job.ImagePaths)
	if err != nil {
		return res, err // a *ChartError, or a malformed imagePath: the config's fault
	}
	res.Found = *f
	return res, nil
}

// templateNames lists the templates of c and its subcharts under prefix.
func templateNames(c *chart.Chart, prefix string) []string {
	var out []string
	for _, t := range c.Templates {
		out = append(out, prefix+"/"+t.Name)
	}
	for _, d := range c.Dependencies() {
		out = append(out, templateNames(d, prefix+"/charts/"+d.Name())...)
	}
	sort.Strings(out)
	return out
}

// reply is the child's answer on stdout.
type reply struct {
	Result     *Result `json:"result,omitempty"`
	ChartError string  `json:"chartError,omitempty"`
	Error      string  `json:"error,omitempty"`
}

const maxReply = 32 << 20

func (s Sandbox) child(ctx context.Context, job Job) (*Result, error) {
	in, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("helm render job: %w", err)
	}
	cmd := exec.CommandContext(ctx, s.Exe, RenderCommand)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxReply, 64<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var r reply
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		msg, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		if msg == "" {
			msg = fmt.Sprint(runErr)
		}
		if ee := (*exec.ExitError)(nil); errors.As(runErr, &ee) {
			// The child rendered this chart alone: whatever ended it
			// (the memory guard, a runtime crash) is the chart's doing.
			if ee.ExitCode() == exitMemory {
				return nil, &ChartError{Msg: msg}
			}
			return nil, &ChartError{Msg: fmt.Sprintf("rendering crashed (%v): %s", runErr, msg)}
		}
		return nil, fmt.Errorf("helm render process: %s", msg)
	}
	switch {
	case r.ChartError != "":
		return r.Result, &ChartError{Msg: r.ChartError}
	case r.Error != "":
		return r.Result, errors.New(r.Error)
	}
	return r.Result, nil
}

// exitMemory is the child's exit status when it passed its memory limit.
const exitMemory = 3

// ServeRender is the child side of a Sandbox: it reads a Job on in, and
// writes the reply on out. It owns the process: past job.MaxMemory it
// writes why on errOut and exits.
func ServeRender(ctx context.Context, in io.Reader, out, errOut io.Writer) error {
	var job Job
	if err := json.NewDecoder(io.LimitReader(in, 2*MaxChartBytes)).Decode(&job); err != nil {
		return fmt.Errorf("read helm render job: %w", err)
	}
	if job.MaxMemory > 0 {
		stop := guardMemory(job.MaxMemory, func(used uint64) {
			fmt.Fprintf(errOut, "rendering used more than %d MiB of memory (%d MiB): a template builds huge strings or lists; Ferry stopped it\n", job.MaxMemory>>20, used>>20)
			os.Exit(exitMemory)
		})
		defer stop()
	}
	res, err := job.run(ctx)
	r := reply{Result: res}
	if ce := (*ChartError)(nil); errors.As(err, &ce) {
		r.ChartError = ce.Msg
	} else if err != nil {
		r.Error = err.Error()
	}
	return json.NewEncoder(out).Encode(r)
}

// guardMemory calls over when the memory the Go runtime holds from the
// OS passes limit, checking every few milliseconds: Sprig's functions
// allocate in steps a template controls, faster than any GC setting can
// refuse.
func guardMemory(limit int64, over func(used uint64)) (stop func()) {
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(samples)
			used := samples[0].Value.Uint64() - samples[1].Value.Uint64()
			if used > uint64(limit) {
				over(used)
				return
			}
		}
	}()
	return func() { close(done) }
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
