package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/clusterresources"
	"github.com/ferry-mirror/ferry/internal/imageset"
	"github.com/ferry-mirror/ferry/internal/lookaside"
	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/policy"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// run holds one invocation's state.
type run struct {
	o        Options
	log      *slog.Logger
	workDir  string
	logsDir  string
	started  time.Time
	stamp    string
	stats    *transfer.Stats
	cfg      *imageset.ImageSetConfiguration
	cfgBytes []byte
	rel      *releaseRun
	policy   *policy.Policy
	sigstore *lookaside.Config // lookaside servers, for signedBy
	// dst is the destination registry (m2m, d2m), for the run report.
	dst *transfer.Client
}

// Run executes one `ferry mirror` invocation.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.ParallelImages < 1 || o.ParallelLayers < 1 {
		return errors.New("--parallel-images and --parallel-layers must be at least 1")
	}
	if o.Retry.Times < 0 {
		return errors.New("--retry-times must not be negative")
	}
	if o.MaxNestedPaths < 0 {
		return errors.New("--max-nested-paths must be 0 (no limit) or a positive number of path components")
	}
	r := &run{o: o, started: time.Now(), stamp: time.Now().UTC().Format("20060102_150405"), stats: &transfer.Stats{}}
	if o.Mode == DiskToMirror {
		fi, err := os.Stat(o.Dir)
		if err != nil || !fi.IsDir() {
			return fmt.Errorf("archive folder %s does not exist; --from must name the folder that holds the ferry_*.tar chunks and %s written by `ferry mirror ... file://<dir>`", o.Dir, "ferry-archive.json")
		}
	}
	r.workDir = filepath.Join(o.Dir, workingDir)
	r.logsDir = filepath.Join(r.workDir, "logs")
	if err := os.MkdirAll(r.logsDir, 0o755); err != nil {
		return fmt.Errorf("create working directory: %w", err)
	}
	logName := "ferry-mirror.log"
	if o.LogName != "" {
		logName = strings.ReplaceAll(o.LogName, "{time}", r.stamp)
	}
	lf, err := os.OpenFile(filepath.Join(r.logsDir, logName), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer lf.Close()
	r.log = slog.New(slog.NewMultiHandler(o.Logger.Handler(), slog.NewJSONHandler(lf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	r.log.Info("ferry mirror", "workflow", o.Mode, "config", o.ConfigPath, "dir", o.Dir, "destination", o.Dest, "dry-run", o.DryRun)

	if err := r.loadConfig(); err != nil {
		return err
	}
	if o.SecurePolicy {
		if r.policy, err = loadPolicy(o.PolicyPath); err != nil {
			return err
		}
		if o.RegistriesD != "" || r.policy.HasSignedBy() {
			if r.sigstore, err = lookaside.Load(o.RegistriesD); err != nil {
				return err
			}
		}
		if o.Mode == DiskToMirror {
			r.log.Warn("--secure-policy checks images when they are read from their source registries (m2m, m2d); disk to mirror pushes what the archive holds unchecked")
		}
	}
	if o.Mode != DiskToMirror { // d2m takes its plan from the archive
		if _, err := r.collectors(nil); err != nil {
			return err
		}
	}
	switch o.Mode {
	case MirrorToMirror:
		return r.mirrorToMirror(ctx)
	case MirrorToDisk:
		return r.mirrorToDisk(ctx)
	case DiskToMirror:
		return r.diskToMirror(ctx)
	}
	return fmt.Errorf("unknown workflow %q", o.Mode)
}

func (r *run) loadConfig() error {
	data, err := os.ReadFile(r.o.ConfigPath)
	if err != nil {
		return fmt.Errorf("read image set configuration: %w (give it with -c <file>)", err)
	}
	cfg, err := imageset.Parse(data, r.o.ConfigPath)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		r.log.Warn("image set configuration", "warning", w.Error())
	}
	r.cfg, r.cfgBytes = cfg, data
	return nil
}

// collectors returns one collector per configured section, or an error
// naming every configured section this version cannot mirror yet. src
// may be nil when only checking the configuration.
func (r *run) collectors(src *transfer.Registries) ([]plan.Collector, error) {
	m := r.cfg.Mirror
	var cs []plan.Collector
	if len(m.Operators) > 0 {
		if err := r.checkCatalogSourceTemplates(); err != nil {
			return nil, sectionError(err.Error(), "", map[string]bool{plan.SectionOperator: true})
		}
		cs = append(cs, r.operatorCollector(src))
	}
	p := m.Platform
	if len(p.Channels) > 0 || p.Release != "" || p.Graph || p.KubeVirtContainer {
		c, err := r.releaseCollector(src)
		if err != nil {
			return nil, sectionError(err.Error(), "", map[string]bool{plan.SectionRelease: true})
		}
		cs = append(cs, c)
	}
	if len(m.AdditionalImages) > 0 {
		cs = append(cs, &plan.Additional{Images: m.AdditionalImages, Blobs: plan.BlobDir(filepath.Join(r.workDir, "generated", "blobs"))})
	}
	if len(m.Helm.Repositories) > 0 || len(m.Helm.Local) > 0 {
		ro, err := r.registryOptions(r.o.SrcTLSVerify, r.o.SrcCreds)
		if err != nil {
			return nil, err
		}
		cs = append(cs, plan.Helm{Config: m.Helm, Client: plan.NewHelmClient(ro.Keychain, !r.o.SrcTLSVerify), Src: plan.Registries(src), Sandbox: r.o.HelmSandbox, Log: r.log})
	}
	if p.Graph {
		cs = append(cs, r.graphCollector(src))
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("%s: nothing to mirror: the mirror section lists no platform releases, operators, additionalImages or helm charts", r.o.ConfigPath)
	}
	return cs, nil
}

func (r *run) registryOptions(verify bool, creds Credentials) (transfer.RegistryOptions, error) {
	files := transfer.AuthFiles(r.o.AuthFile)
	kc, err := transfer.LoadKeychain(files, r.o.AuthFile != "")
	if err != nil {
		return transfer.RegistryOptions{}, err
	}
	return transfer.RegistryOptions{Insecure: !verify, Keychain: creds.keychain(kc), Retry: r.o.Retry, Logger: r.log, UserAgent: "ferry-mirror"}, nil
}

// planner resolves what the config names into a plan.
type planner struct {
	b    *plan.Builder
	reqs []plan.Request
	ops  *plan.Operators
	// src reads source images, and the blobs of the images Ferry built.
	src transfer.Source
	// reg reads source registries (signatures for --secure-policy).
	reg *transfer.Registries
}

// newPlanner runs the collectors (release graphs, catalogs, charts) and
// returns the builder that resolves their requests.
func (r *run) newPlanner(ctx context.Context) (*planner, error) {
	so, err := r.registryOptions(r.o.SrcTLSVerify, r.o.SrcCreds)
	if err != nil {
		return nil, err
	}
	src := transfer.NewRegistries(so)
	cs, err := r.collectors(src)
	if err != nil {
		return nil, err
	}
	var reqs []plan.Request
	var generated []plan.Generated
	var ops *plan.Operators
	for _, c := range cs {
		got, err := c.Collect(ctx)
		if err != nil {
			return nil, sectionError(fmt.Sprintf("collect %s: %v", c.Section(), err), "", map[string]bool{c.Section(): true})
		}
		reqs = append(reqs, got.Requests...)
		generated = append(generated, got.Generated...)
		if o, ok := c.(*plan.Operators); ok {
			ops = o // its Users name the bundles a missing image breaks
		}
	}
	b := &plan.Builder{Src: plan.Registries(src), Blocked: r.cfg.Mirror.BlockedPatterns(), RemoveSignatures: r.o.RemoveSignatures, DigestTags: !r.o.NoDigestTags, Parallel: max(r.o.ParallelImages*4, 16), Log: r.log, Generated: generated}
	return &planner{b: b, reqs: reqs, ops: ops, reg: src, src: generatedSource{dir: plan.BlobDir(filepath.Join(r.workDir, "generated", "blobs")), next: src}}, nil
}

// build resolves every request and writes plan.json. The builder's
// Resolved hook, when set, sees each image before build returns.
func (r *run) build(ctx context.Context, pl *planner) (*plan.Plan, error) {
	r.log.Info("collecting images", "requests", len(pl.reqs))
	p, err := pl.b.Build(ctx, pl.reqs)
	if err != nil {
		return nil, fmt.Errorf("collect images: %w", err)
	}
	if pl.ops != nil {
		annotateMissing(p, pl.ops)
	}
	r.log.Info("plan ready", "images", len(p.Images), "missing", len(p.Missing), "blocked", len(p.Blocked), "blobs", len(p.Blobs), "bytes", p.TotalBytes())
	if err := writeJSON(filepath.Join(r.workDir, "plan.json"), p); err != nil {
		return nil, err
	}
	return p, nil
}

// planAndCopy copies each image as soon as the planner has resolved it,
// so the destination works while the rest of the plan is looked up, then
// copies what only the finished plan holds (the images Ferry built). It
// returns the plan and one result per image, in plan order.
func (r *run) planAndCopy(ctx context.Context, pl *planner, dst transfer.Dest, root string, maxNested int) (*plan.Plan, []transfer.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	eng := r.engine(pl.src, dst, pl.b.Manifest)
	pr := startProgress(r.o, r.log, r.stats)
	defer pr.stop()
	st := &stream{eng: eng, sem: make(chan struct{}, r.o.ParallelImages), done: map[string]transfer.Result{},
		job: func(im plan.Image) transfer.Job { return im.Job(root, maxNested, !r.o.RemoveSignatures) }}
	if r.policy != nil {
		st.check = func(ctx context.Context, im plan.Image) error { return r.checkPolicy(ctx, pl.reg, im) }
	}
	pl.b.Resolved = func(im plan.Image) { st.add(ctx, im) }
	p, err := r.build(ctx, pl)
	if err != nil {
		cancel() // the copies already started are of no use now
		st.wg.Wait()
		return nil, nil, err
	}
	pr.setTotals(len(p.Images), p.TotalBytes())
	return p, st.finish(ctx, p), nil
}

// stream runs copy jobs as they arrive, a bounded number at a time.
type stream struct {
	eng *transfer.Engine
	job func(plan.Image) transfer.Job
	// check, when set, vets an image before it is copied (--secure-policy).
	check func(context.Context, plan.Image) error
	sem   chan struct{}
	wg    sync.WaitGroup

	mu   sync.Mutex
	done map[string]transfer.Result // by plan.Image.Key
}

func (s *stream) add(ctx context.Context, im plan.Image) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		j := s.job(im)
		res := transfer.Result{Job: j, Err: ctx.Err()}
		select {
		case s.sem <- struct{}{}:
			if s.check != nil {
				res.Err = s.check(ctx, im)
			}
			if res.Err == nil {
				res = s.eng.RunJob(ctx, j)
			}
			<-s.sem
		case <-ctx.Done():
		}
		s.mu.Lock()
		s.done[im.Key()] = res
		s.mu.Unlock()
	}()
}

// finish waits for the streamed jobs, runs the plan's other images, and
// returns the results in plan order.
func (s *stream) finish(ctx context.Context, p *plan.Plan) []transfer.Result {
	s.wg.Wait()
	for _, im := range p.Images {
		if _, ok := s.done[im.Key()]; !ok {
			s.add(ctx, im)
		}
	}
	s.wg.Wait()
	results := make([]transfer.Result, len(p.Images))
	for i, im := range p.Images {
		results[i] = s.done[im.Key()]
	}
	return results
}

// buildDryRun builds the plan of pl and makes of it what dryRun does.
func (r *run) buildDryRun(ctx context.Context, pl *planner, root string) error {
	p, err := r.build(ctx, pl)
	if err != nil {
		return err
	}
	return r.dryRun(p, root)
}

// dryRun writes mapping.txt and missing.txt and stops.
func (r *run) dryRun(p *plan.Plan, root string) error {
	var mapping, missing strings.Builder
	dest := func(im plan.Image) string {
		if root == "" { // mirror to disk: the archive keeps repository paths
			ref := im.DestRepo + "@" + im.Digest.String()
			if im.DestTag != "" {
				ref = im.DestRepo + ":" + im.DestTag
			}
			return "file://" + ref
		}
		return "docker://" + im.DestRef(root, r.o.MaxNestedPaths)
	}
	if err := p.WriteMapping(&mapping, dest); err != nil {
		return err
	}
	if err := p.WriteMissing(&missing); err != nil {
		return err
	}
	mp, mi := filepath.Join(r.workDir, "dry-run", "mapping.txt"), filepath.Join(r.workDir, "dry-run", "missing.txt")
	if err := os.MkdirAll(filepath.Dir(mp), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(mp, []byte(mapping.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(mi, []byte(missing.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(r.o.Out, "dry run: %d images, %d blobs, %s to copy, %d missing, %d blocked\nmapping: %s\nmissing: %s\n",
		len(p.Images), len(p.Blobs), transfer.FormatBytes(p.TotalBytes()), len(p.Missing), len(p.Blocked), mp, mi)
	return nil
}

func (r *run) mirrorToMirror(ctx context.Context) error {
	var dst *transfer.Client
	if !r.o.DryRun { // a wrong destination should fail before a long plan
		var err error
		if dst, err = r.destination(ctx); err != nil {
			return err
		}
	}
	pl, err := r.newPlanner(ctx)
	if err != nil {
		return err
	}
	if r.o.DryRun {
		return r.buildDryRun(ctx, pl, r.o.Dest)
	}
	p, results, err := r.planAndCopy(ctx, pl, transfer.RegistryDest{R: dst}, r.o.Dest, r.o.MaxNestedPaths)
	if err != nil {
		return err
	}
	r.recordMirrored(p, results, pl.ops, pl.b.Manifest)
	return r.finish(p, results, true)
}

func (r *run) destination(ctx context.Context) (*transfer.Client, error) {
	do, err := r.registryOptions(r.o.DestTLSVerify, r.o.DestCreds)
	if err != nil {
		return nil, err
	}
	host, _, _ := strings.Cut(r.o.Dest, "/")
	reg, err := transfer.NewClient(host, do)
	if err != nil {
		return nil, err
	}
	if err := reg.Ping(ctx); err != nil {
		return nil, fmt.Errorf("destination: %w (is docker://%s right, and the registry running? for plain HTTP add --dest-tls-verify=false)", err, r.o.Dest)
	}
	r.dst = reg
	return reg, nil
}

func (r *run) engine(src transfer.Source, dst transfer.Dest, known func(digest.Digest) (transfer.Manifest, bool)) *transfer.Engine {
	return &transfer.Engine{
		Src: src, Dst: dst, Known: known,
		ParallelImages: r.o.ParallelImages, ParallelLayers: r.o.ParallelLayers, ImageTimeout: r.o.ImageTimeout,
		Retry: r.o.Retry, Log: r.log, Stats: r.stats,
	}
}

// copy runs the engine over jobs, all known up front, with progress shown.
func (r *run) copy(ctx context.Context, eng *transfer.Engine, p *plan.Plan, jobs []transfer.Job) []transfer.Result {
	pr := startProgress(r.o, r.log, r.stats)
	pr.setTotals(len(jobs), p.TotalBytes())
	defer pr.stop()
	return eng.Run(ctx, jobs)
}

// finish writes cluster resources (for registry destinations), the
// failure report and the summary, and turns failures into the exit code.
func (r *run) finish(p *plan.Plan, results []transfer.Result, resources bool) error {
	failed := map[string]bool{}
	var lines []string
	for _, m := range p.Missing {
		failed[m.Section] = true
		lines = append(lines, fmt.Sprintf("[%s] %s: %s", m.Section, m.Source, m.Reason))
	}
	var mappings []clusterresources.Mapping
	generated := false
	// Jobs were made from p.Images in order, so results line up with them.
	for i, res := range results {
		im := p.Images[i]
		if res.Err != nil {
			failed[im.Section] = true
			lines = append(lines, fmt.Sprintf("[%s] %s: %v", im.Section, res.Job.Name, res.Err))
			continue
		}
		if im.Generated {
			generated = true // graph: true alone has only the graph image
			continue         // no source reference for a mirror set to name
		}
		mappings = append(mappings, clusterresources.Mapping{Source: im.SourceRef(), Destination: im.DestRef(r.o.Dest, r.o.MaxNestedPaths), Section: im.Section})
	}
	for _, im := range p.Images {
		if im.Filtered != nil {
			fmt.Fprintf(r.o.Out, "note: %s was filtered to platforms %s; its digest changed from %s to %s\n", im.Source, strings.Join(im.Filtered, ", "), im.SourceDigest, im.Digest)
		}
	}
	var resErr error
	dir := ""
	if resources && (len(mappings) > 0 || generated) {
		dir = filepath.Join(r.workDir, clusterresources.ClusterResourcesDir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		var files []string
		if len(mappings) > 0 {
			host := filepath.Join(r.workDir, clusterresources.HostConfigDir)
			var err error
			files, err = clusterresources.Write(dir, host, mappings, clusterresources.Options{CABundleFile: r.o.CABundle, InsecureMirrors: !r.o.DestTLSVerify})
			if err != nil {
				resErr = fmt.Errorf("write cluster resources: %w", err)
				r.log.Error("cluster resources", "error", err)
			}
		}
		more, err := r.releaseResources(dir, p, results)
		if err != nil && resErr == nil {
			resErr = fmt.Errorf("write release cluster resources: %w", err)
		}
		cats, err := r.catalogResources(dir, p, results)
		if err != nil && resErr == nil {
			resErr = fmt.Errorf("write catalog sources: %w", err)
		}
		more = append(more, cats...)
		for _, f := range append(files, more...) {
			r.log.Info("wrote cluster resource", "file", f)
		}
	}
	report := ""
	if len(lines) > 0 {
		report = filepath.Join(r.logsDir, "mirroring_errors_"+r.stamp+".txt")
		if err := os.WriteFile(report, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			r.log.Error("write failure report", "error", err)
		}
	}
	r.summary(p)
	if resources {
		r.recordRun(p, results, lines, dir)
	}
	if len(failed) > 0 {
		msg := fmt.Sprintf("%d of %d images could not be mirrored", len(lines), len(p.Images)+len(p.Missing))
		// A release that failed as a whole says why here: the fix
		// (a key, a flag) is the user's, not the image's.
		var why []string
		for _, m := range p.Missing {
			// So is a chart that does not render: the chart or its values
			// need fixing.
			if (m.Section == plan.SectionRelease || m.Section == plan.SectionHelm && strings.HasPrefix(m.Source, plan.FailedChart)) && len(why) < 3 {
				why = append(why, m.Reason)
				if m.Section == plan.SectionHelm {
					why[len(why)-1] = m.Source + ": " + m.Reason
				}
			}
		}
		if len(why) > 0 {
			msg += ": " + strings.Join(why, "; ")
		}
		return sectionError(msg, report, failed)
	}
	return resErr
}

// readJSON reads the JSON file path into v; a missing file leaves v as it
// is. what names the file in errors, and fix says what to do when it is
// damaged.
func readJSON(path string, v any, what, fix string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s %s is damaged (%v); %s", what, path, err, fix)
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
