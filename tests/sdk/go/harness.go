// Package sdkgo is the Go server SDK compatibility suite for Usher.
//
// The tests drive a real Usher binary black-box with LiveKit's official Go
// server SDK (github.com/livekit/server-sdk-go/v2, which speaks Twirp with
// protobuf encoding). This file is the harness: it starts Usher (USHER_BIN,
// default target/debug/usher relative to the repo root) on 127.0.0.1:0, reads
// its URL from the log line "listening on http://127.0.0.1:<port>", and stops
// it with SIGTERM (SIGKILL after 5 s). Set USHER_SDK_LOGS=1 to echo the server
// log when it stops.
package sdkgo

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	DevKey    = "devkey"
	DevSecret = "secret"

	NotFoundRoom        = "twirp error unknown: requested room does not exist"
	NotFoundParticipant = "twirp error unknown: participant does not exist"
	PermissionsDenied   = "permissions denied"
	SameRoom            = "destination room cannot be the same as source room "

	startTimeout = 30 * time.Second
	stopGrace    = 5 * time.Second
)

var (
	listenRE = regexp.MustCompile(`listening on (http://[0-9.:]+)`)
	ansiRE   = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")
)

// RepoRoot is the Usher checkout this module lives in (tests/sdk/go -> repo root).
func RepoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	// `go test` runs in the package directory, which is tests/sdk/go.
	return filepath.Clean(filepath.Join(wd, "..", "..", ".."))
}

// UsherBin is $USHER_BIN (absolute, or relative to the repo root) or target/debug/usher.
func UsherBin() string {
	p := os.Getenv("USHER_BIN")
	if p == "" {
		p = "target/debug/usher"
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(RepoRoot(), p)
	}
	return p
}

// Usher is one running server process.
type Usher struct {
	URL   string
	Label string

	cmd    *exec.Cmd
	mu     sync.Mutex
	logs   []string
	done   chan struct{} // closed when the process has exited
	readWG sync.WaitGroup
}

// StartDev starts `usher --dev` (key devkey, secret secret) on an ephemeral port.
func StartDev() (*Usher, error) {
	return Start("usher --dev", "--dev", "--bind", "127.0.0.1", "--port", "0")
}

// StartWithConfig starts Usher with an inline YAML config on an ephemeral port.
func StartWithConfig(yaml string) (*Usher, error) {
	return Start("usher --config-body", "--config-body", yaml, "--bind", "127.0.0.1", "--port", "0")
}

// Start runs the Usher binary with args and waits for its "listening on" line.
func Start(label string, args ...string) (*Usher, error) {
	bin := UsherBin()
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return nil, fmt.Errorf("Usher binary not found at %s (build it first, or set USHER_BIN)", bin)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = RepoRoot()
	cmd.Stdin = nil
	cmd.Env = os.Environ()
	if _, ok := os.LookupEnv("NO_COLOR"); !ok {
		cmd.Env = append(cmd.Env, "NO_COLOR=1")
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", label, bin, err)
	}

	u := &Usher{Label: label, cmd: cmd, done: make(chan struct{})}
	urlCh := make(chan string, 2)
	u.readWG.Add(2)
	go u.read(stdout, urlCh)
	go u.read(stderr, urlCh)
	go func() {
		u.readWG.Wait() // pipes must be drained before Wait
		_ = cmd.Wait()
		close(u.done)
	}()

	select {
	case url := <-urlCh:
		u.URL = url
		return u, nil
	case <-u.done:
		return nil, fmt.Errorf("%s exited (%s) before listening; args=%q\n%s",
			label, cmd.ProcessState, args, u.Tail(60))
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-u.done
		return nil, fmt.Errorf("%s: no 'listening on' line within %s\n%s", label, startTimeout, u.Tail(60))
	}
}

func (u *Usher) read(r io.Reader, urlCh chan<- string) {
	defer u.readWG.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := ansiRE.ReplaceAllString(sc.Text(), "")
		u.mu.Lock()
		u.logs = append(u.logs, line)
		u.mu.Unlock()
		if m := listenRE.FindStringSubmatch(line); m != nil {
			select {
			case urlCh <- m[1]:
			default:
			}
		}
	}
}

// Tail returns the last n log lines.
func (u *Usher) Tail(n int) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	start := len(u.logs) - n
	if start < 0 {
		start = 0
	}
	return strings.Join(u.logs[start:], "\n")
}

// Stop sends SIGTERM, waits up to 5 s, then SIGKILLs. It returns an error if the
// process had to be killed.
func (u *Usher) Stop() error {
	if u == nil {
		return nil
	}
	var err error
	select {
	case <-u.done:
	default:
		_ = u.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-u.done:
		case <-time.After(stopGrace):
			_ = u.cmd.Process.Kill()
			<-u.done
			err = errors.New(u.Label + ": did not exit within 5 s of SIGTERM; killed")
		}
	}
	if os.Getenv("USHER_SDK_LOGS") != "" {
		fmt.Fprintf(os.Stderr, "--- %s log ---\n%s\n", u.Label, u.Tail(1<<30))
	}
	return err
}

// Unique returns prefix plus a random suffix, for room names that never collide.
func Unique(prefix string) string {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}
