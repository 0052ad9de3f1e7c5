// Package s3 is the BlobStore for highly available deployments: blobs and
// upload data in one bucket of any S3-compatible store (MinIO, Ceph RGW,
// AWS), so every replica sharing the bucket sees every blob and can
// continue every upload.
//
// Layout in the bucket (under an optional prefix):
//
//	blobs/<algorithm>/<first two hex>/<hex>   committed blobs
//	uploads/<id>/info                           marks a started upload
//	uploads/<id>/c/<start>-<seq>-<rand>         one object per written chunk
//
// A blob key is written only by CommitUpload, after the bytes were checked,
// and S3 writes are atomic: a crash never leaves a partial blob visible.
package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

// Options says where the bucket is and how to reach it.
type Options struct {
	Endpoint  string // host:port; default s3.amazonaws.com
	Region    string
	Bucket    string
	Prefix    string // key prefix inside the bucket, e.g. "ferry/"
	Insecure  bool   // plain HTTP to the endpoint
	AccessKey string
	SecretKey string
}

// ParseURL reads s3://<bucket>[/<prefix>]?endpoint=host:port&region=..&insecure=true.
// Credentials are not part of the URL; the caller fills them in.
func ParseURL(raw string) (Options, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return Options{}, fmt.Errorf("blob store %q: expected s3://<bucket>?endpoint=<host:port>&region=<region>&insecure=<bool>", raw)
	}
	q := u.Query()
	o := Options{Bucket: u.Host, Endpoint: q.Get("endpoint"), Region: q.Get("region"), Prefix: strings.Trim(u.Path, "/")}
	if o.Prefix != "" {
		o.Prefix += "/"
	}
	if o.Endpoint == "" {
		o.Endpoint = "s3.amazonaws.com"
	}
	if v := q.Get("insecure"); v != "" {
		if o.Insecure, err = strconv.ParseBool(v); err != nil {
			return Options{}, fmt.Errorf("blob store %q: insecure=%q is not true or false", raw, v)
		}
	}
	for k := range q {
		if k != "endpoint" && k != "region" && k != "insecure" {
			return Options{}, fmt.Errorf("blob store %q: unknown parameter %q (known: endpoint, region, insecure)", raw, k)
		}
	}
	return o, nil
}

// Store is a BlobStore in an S3 bucket.
type Store struct {
	c      *minio.Client
	bucket string
	prefix string
	bufs   sync.Pool // *[]byte of smallChunk, for WriteUpload
}

// New connects to the bucket, creating it if it does not exist.
func New(ctx context.Context, o Options) (*Store, error) {
	c, err := minio.New(o.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
		Secure: !o.Insecure,
		Region: o.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", o.Endpoint, err)
	}
	s := &Store{c: c, bucket: o.Bucket, prefix: o.Prefix}
	s.bufs.New = func() any { b := make([]byte, smallChunk); return &b }
	ok, err := c.BucketExists(ctx, o.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 bucket %s at %s: %w (check the endpoint and the credentials)", o.Bucket, o.Endpoint, err)
	}
	if !ok {
		if err := c.MakeBucket(ctx, o.Bucket, minio.MakeBucketOptions{Region: o.Region}); err != nil && !isCode(err, "BucketAlreadyOwnedByYou") {
			return nil, fmt.Errorf("s3 bucket %s does not exist and could not be created: %w; create it, or allow s3:CreateBucket", o.Bucket, err)
		}
	}
	return s, nil
}

func isCode(err error, code string) bool { return minio.ToErrorResponse(err).Code == code }

func isNotFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey"
}

func notFound(err error, what string) error {
	if isNotFound(err) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (s *Store) blobKey(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("blob %q: %w: %w", d, store.ErrNotFound, err)
	}
	hex := d.Encoded()
	return s.prefix + "blobs/" + string(d.Algorithm()) + "/" + hex[:2] + "/" + hex, nil
}

// Open implements store.BlobStore. The minio.Object seeks by issuing
// ranged GETs, so Range requests read only what they need.
func (s *Store) Open(ctx context.Context, d digest.Digest) (*store.Blob, error) {
	key, err := s.blobKey(d)
	if err != nil {
		return nil, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, notFound(err, "blob "+string(d))
	}
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, notFound(err, "blob "+string(d))
	}
	return &store.Blob{ReadSeekCloser: obj, Size: info.Size, ModTime: info.LastModified}, nil
}

// Stat implements store.BlobStore.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	key, err := s.blobKey(d)
	if err != nil {
		return 0, err
	}
	info, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return 0, notFound(err, "blob "+string(d))
	}
	return info.Size, nil
}

// Delete implements store.BlobStore.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	key, err := s.blobKey(d)
	if err != nil {
		return err
	}
	// S3 deletes of absent keys succeed; the interface wants ErrNotFound.
	if _, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{}); err != nil {
		return notFound(err, "blob "+string(d))
	}
	if err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// PresignGet returns a URL that reads blob d straight from the bucket for
// ttl, so a registry can redirect a client there instead of relaying the
// bytes. It does not check that the blob exists.
func (s *Store) PresignGet(ctx context.Context, d digest.Digest, ttl time.Duration) (*url.URL, error) {
	key, err := s.blobKey(d)
	if err != nil {
		return nil, err
	}
	u, err := s.c.PresignedGetObject(ctx, s.bucket, key, ttl, url.Values{})
	if err != nil {
		return nil, fmt.Errorf("presign blob %s: %w", d, err)
	}
	return u, nil
}

// Blobs implements store.BlobStore.
func (s *Store) Blobs(ctx context.Context, fn func(d digest.Digest, size int64, written time.Time) error) error {
	root := s.prefix + "blobs/"
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: root, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("list blobs: %w", obj.Err)
		}
		parts := strings.Split(strings.TrimPrefix(obj.Key, root), "/")
		if len(parts) != 3 {
			continue
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
		if d.Validate() != nil {
			continue
		}
		if err := fn(d, obj.Size, obj.LastModified); err != nil {
			return err
		}
	}
	return nil
}

// Ping implements store.BlobStore: the bucket must be reachable.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3 bucket %s: %w", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("s3 bucket %s: %w", s.bucket, errors.New("does not exist"))
	}
	return nil
}
