package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/policy"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

func loadPolicy(path string) (*policy.Policy, error) {
	if path != "" {
		return policy.Load(path)
	}
	for _, p := range policy.DefaultPaths() {
		if _, err := os.Stat(p); err == nil {
			return policy.Load(p)
		}
	}
	return nil, fmt.Errorf("--secure-policy: no policy file in %s; give one with --policy <policy.json>", strings.Join(policy.DefaultPaths(), " or "))
}

const cosignSignatureAnnotation = "dev.cosignproject.cosign/signature"

// checkPolicy vets one planned image against the signature policy with
// the cosign signatures stored next to it in its source repository.
func (r *run) checkPolicy(ctx context.Context, src *transfer.Registries, im plan.Image) error {
	if im.Generated || src == nil {
		return nil // built by Ferry from checked inputs; nothing upstream signed it
	}
	target := policy.Image{Repo: im.SourceRepo, Digest: im.SourceDigest}
	if rest := strings.TrimPrefix(im.Source, im.SourceRepo); strings.HasPrefix(rest, ":") {
		target.Tag = rest[1:]
	}
	var sigs policy.Signatures
	cosign, simple := r.policy.Needs(target)
	if cosign {
		var err error
		if sigs.Cosign, err = cosignSignatures(ctx, src, im); err != nil {
			return fmt.Errorf("read the signatures of %s: %w", target, err)
		}
	}
	if simple && r.sigstore != nil {
		var err error
		if sigs.Simple, err = r.sigstore.Fetch(ctx, target.Repo, target.Tag, target.Digest); err != nil {
			r.stats.ImagesFailed.Add(1)
			return fmt.Errorf("refused by --secure-policy: read the GPG signatures of %s: %w", target, err)
		}
		sigs.Where = r.sigstore.Where()
	}
	if err := r.policy.Check(target, sigs); err != nil {
		r.stats.ImagesFailed.Add(1)
		r.log.Warn("refused by --secure-policy, not mirrored", "image", target.String(), "error", err)
		return fmt.Errorf("refused by --secure-policy: %w", err)
	}
	r.log.Debug("signature policy accepts", "image", target.String(), "cosign signatures", len(sigs.Cosign), "GPG signatures", len(sigs.Simple))
	return nil
}

// cosignSignatures reads the sha256-<hex>.sig tag of the image's digest.
func cosignSignatures(ctx context.Context, src *transfer.Registries, im plan.Image) ([]policy.Signature, error) {
	reg, path, err := src.Split(im.SourceRepo)
	if err != nil {
		return nil, err
	}
	tag := im.SourceDigest.Algorithm().String() + "-" + im.SourceDigest.Encoded() + ".sig"
	m, err := reg.GetManifest(ctx, path, tag)
	if transfer.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Layers []struct {
			Digest      string            `json:"digest"`
			Size        int64             `json:"size"`
			Annotations map[string]string `json:"annotations"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(m.Data, &doc); err != nil {
		return nil, fmt.Errorf("signature manifest %s:%s: %w", im.SourceRepo, tag, err)
	}
	var sigs []policy.Signature
	for _, l := range doc.Layers {
		b64 := l.Annotations[cosignSignatureAnnotation]
		if b64 == "" {
			continue
		}
		if l.Size > 1<<20 {
			return nil, errors.New("a signature payload is larger than 1 MiB")
		}
		d, err := parseDigest(l.Digest)
		if err != nil {
			return nil, err
		}
		rc, _, err := reg.GetBlob(ctx, path, d)
		if err != nil {
			return nil, err
		}
		payload, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if err != nil {
			return nil, err
		}
		if d.Validate() != nil || d.Algorithm().FromBytes(payload) != d {
			return nil, fmt.Errorf("signature payload %s does not match its digest", d)
		}
		sigs = append(sigs, policy.Signature{Payload: payload, Base64: b64})
	}
	return sigs, nil
}

func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("signature layer digest %q: %w", s, err)
	}
	return d, nil
}
