package release

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestListQueryResolve(t *testing.T) {
	tests := []struct {
		in      ListQuery
		mode    ListMode
		channel string
		err     string
	}{
		{in: ListQuery{}, mode: ListMinorVersions},
		{in: ListQuery{Version: "4.16"}, mode: ListChannelVersions, channel: "stable-4.16"},
		{in: ListQuery{Version: "4.16", Channel: "fast-4.16"}, mode: ListChannelVersions, channel: "fast-4.16"},
		{in: ListQuery{Channel: "eus-4.16"}, mode: ListChannelVersions, channel: "eus-4.16"},
		{in: ListQuery{Channels: true, Version: "4.17"}, mode: ListChannelNames, channel: "stable-4.17"},
		{in: ListQuery{Channels: true}, err: "--channels needs --version"},
		{in: ListQuery{Version: "4.16.3"}, err: `--version "4.16.3": want major.minor`},
		{in: ListQuery{Channel: "stable-4.16", Arches: []Arch{"i386"}}, err: `unknown architecture "i386"`},
	}
	for _, tc := range tests {
		q, mode, err := tc.in.Resolve()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || mode != tc.mode || q.Channel != tc.channel || !slices.Equal(q.Arches, []Arch{AMD64}) {
			t.Errorf("%+v: got %+v mode %v err %v", tc.in, q, mode, err)
		}
	}
}

func TestListFromGraph(t *testing.T) {
	f := startCincinnati(t)
	ctx := context.Background()
	c := f.client()

	vs, err := ChannelVersions(ctx, c, TypeOCP, "stable-4.17", S390X)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(testChannels["stable-4.17"].versions)
	slices.SortFunc(want, cmpVersion)
	if !slices.Equal(vs, want) {
		t.Fatalf("versions %v, want %v", vs, want)
	}

	// The channels come from the releases' metadata in stable-4.17's graph.
	names, err := ChannelNames(ctx, c, "stable-4.17")
	if err != nil {
		t.Fatal(err)
	}
	var wantNames []string
	for name, ch := range testChannels {
		for _, v := range testChannels["stable-4.17"].versions {
			if slices.Contains(ch.versions, v) && !slices.Contains(wantNames, name) {
				wantNames = append(wantNames, name)
			}
		}
	}
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Fatalf("channels %v, want %v", names, wantNames)
	}

	if _, err := ChannelNames(ctx, c, "stable-4.99"); err == nil || !strings.Contains(err.Error(), "stable-4.99") {
		t.Fatalf("err %v, want one naming the version", err)
	}
}

func TestMinorVersions(t *testing.T) {
	got := MinorVersions([]string{"4.9.10-x86_64", "4.16.3-x86_64", "4.16.3-aarch64", "sha256-abc.sig", "4.10.0-rc.1-multi", "latest", "4.2.0"})
	if want := []string{"4.2", "4.9", "4.10", "4.16"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
