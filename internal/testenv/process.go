package testenv

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"time"
)

// waitHTTP polls url every interval until it answers with a status ready
// accepts, the process whose Wait result done carries exits (what names
// it in the error), or ctx ends.
func waitHTTP(ctx context.Context, url string, ready func(status int) bool, every time.Duration, done chan error, what string) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if ready(resp.StatusCode) {
				return nil
			}
		}
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("%s exited: %v", what, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// stopGroup sends sig to the process group led by pid and waits up to
// 10 s for the process's Wait result on done before killing the group.
func stopGroup(pid int, sig syscall.Signal, done chan error) {
	_ = syscall.Kill(-pid, sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
}
