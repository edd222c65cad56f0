package opgeth

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// CacheEnv names the environment variable that overrides the folder where
// built geth binaries are kept (default: os.UserCacheDir()/lightcl).
const CacheEnv = "LIGHTCL_GETH_CACHE"

// gethModule is the module path whose replace line in gethbuild/go.mod
// names the op-geth version.
const gethModule = "github.com/ethereum/go-ethereum"

var (
	builtMu sync.Mutex
	built   = map[string]bool{} // binaries found or built by this process
)

// Binary returns the path of op-geth's geth, building it on first use.
//
// The binary is built from the module cache in the gethbuild module next to
// this package, once per op-geth version (read from that module's replace
// line) into the cache folder (CacheEnv), and reused from there by every
// later test run and test package. Parallel builders are serialised by a file
// lock; the binary appears atomically. A cold build takes a few minutes on 2
// cores, so run cold with a generous -timeout. With -short the test is
// skipped.
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("opgeth: skipping test that runs a real op-geth in -short mode")
	}
	path, err := findOrBuild(t.Logf)
	if err != nil {
		t.Fatalf("opgeth: %v", err)
	}
	return path
}

func findOrBuild(logf func(format string, args ...any)) (string, error) {
	buildDir, err := gethbuildDir()
	if err != nil {
		return "", err
	}
	version, err := opGethVersion(filepath.Join(buildDir, "go.mod"))
	if err != nil {
		return "", err
	}
	cacheDir, err := cacheDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(cacheDir, fmt.Sprintf("op-geth-%s-%s-%s", version, runtime.GOOS, runtime.GOARCH))

	builtMu.Lock()
	defer builtMu.Unlock()
	if _, ok := built[path]; ok {
		return path, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("creating geth cache folder: %w", err)
	}
	unlock, err := lockFile(path+".lock", logf)
	if err != nil {
		return "", err
	}
	defer unlock()
	if usable(path) {
		built[path] = true
		return path, nil
	}
	logf("opgeth: building op-geth %s into %s (once per version; a few minutes on a cold cache)", version, path)
	start := time.Now()
	if err := build(buildDir, path); err != nil {
		return "", err
	}
	logf("opgeth: built op-geth %s in %s", version, time.Since(start).Round(time.Millisecond))
	built[path] = true
	return path, nil
}

// gethbuildDir locates the gethbuild module from this source file's path.
func gethbuildDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the opgeth package source (runtime.Caller failed)")
	}
	dir := filepath.Join(filepath.Dir(file), "gethbuild")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("gethbuild module not found next to %s (built with -trimpath?): %w", file, err)
	}
	return dir, nil
}

// opGethVersion reads the version from the line
// `replace github.com/ethereum/go-ethereum => <module> <version>`, in a
// one-line replace or a replace block.
func opGethVersion(goMod string) (string, error) {
	f, err := os.Open(goMod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	inBlock := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "replace (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "replace "):
			line = strings.TrimSpace(strings.TrimPrefix(line, "replace "))
		case !inBlock:
			continue
		}
		// line is now "<old> [<oldversion>] => <new> <newversion>"
		old, repl, ok := strings.Cut(line, "=>")
		if oldFields := strings.Fields(old); !ok || len(oldFields) == 0 || oldFields[0] != gethModule {
			continue
		}
		fields := strings.Fields(repl)
		if len(fields) != 2 {
			return "", fmt.Errorf("%s: replace of %s has no version: %q", goMod, gethModule, line)
		}
		return fields[1], nil
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: no replace line for %s", goMod, gethModule)
}

func cacheDir() (string, error) {
	if dir := os.Getenv(CacheEnv); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder (set %s): %w", CacheEnv, err)
	}
	return filepath.Join(dir, "lightcl"), nil
}

// lockFile takes an exclusive flock on path, waiting for other holders, and
// returns the function that releases it.
func lockFile(path string, logf func(format string, args ...any)) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening build lock: %w", err)
	}
	fd := int(f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
		logf("opgeth: another process holds %s (building op-geth?); waiting", path)
		err = syscall.Flock(fd, syscall.LOCK_EX)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(fd, syscall.LOCK_UN)
		f.Close()
	}, nil
}

// usable reports whether path is a non-empty executable file.
func usable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Size() > 0 && st.Mode()&0o111 != 0
}

// build runs `go build` for cmd/geth in buildDir into a temporary file next
// to out and renames it to out.
func build(buildDir, out string) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary binary: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath) // a no-op once renamed

	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go" // GOROOT moved since this test binary was built
	}
	cmd := exec.Command(goBin, "build", "-o", tmpPath, gethModule+"/cmd/geth")
	cmd.Dir = buildDir
	// The gethbuild module stands alone: never let a go.work pull it into
	// another build list.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building op-geth in %s: %w\n%s", buildDir, err, output)
	}
	if err := os.Chmod(tmpPath, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmpPath, out); err != nil {
		return fmt.Errorf("installing op-geth binary: %w", err)
	}
	return nil
}
