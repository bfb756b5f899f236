// ledger-interop checks EvidenceLedger exports with Go's own
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, so that our
// checkpoints, Merkle roots and proofs are known to interoperate byte for byte
// (DESIGN.md, wire formats 3, 4, 5 and 8).
//
// It builds offline against Debian 12's golang-golang-x-mod-dev (x/mod 0.7.0)
// and the standard library only; see interop-check.sh.
//
// Usage:
//
//	ledger-interop checkpoint  --checkpoint FILE (--vkey VKEY | --vkey-file FILE)
//	ledger-interop root        --leaves LEAVES --checkpoint FILE (--vkey VKEY | --vkey-file FILE) [--allow-prefix]
//	ledger-interop inclusion   --proof PROOF.json --checkpoint FILE (--vkey VKEY | --vkey-file FILE) [--leaves LEAVES]
//	ledger-interop consistency --proof PROOF.json --old FILE --new FILE (--vkey VKEY | --vkey-file FILE)
//
// Exit status: 0 and one line "ok: ..." on stdout on success; 1 and one line
// "FAIL <subcommand>: ..." on stderr when a check fails; 2 on bad usage.
//
// Tree size and root always come from a checkpoint whose signature verified,
// never from a proof file: a proof file's tree_size/root (old_size/new_size,
// old_root/new_root) must equal the checkpoint's or the check fails.
//
// tlog's RecordProof and TreeProof are the RFC 6962 / RFC 9162 inclusion and
// consistency proof hash lists, in the same order (tlog/tlog.go: leafProof
// and runRecordProof follow PATH of RFC 9162 §2.1.3.1, treeProof and
// runTreeProof follow PROOF/SUBPROOF of §2.1.4.1), so proofs are passed to
// tlog.CheckRecord and tlog.CheckTree unchanged. The one difference is the
// empty tree: tlog.TreeHash(0) is 32 zero bytes, while RFC 6962/9162 define
// MTH({}) = SHA-256() (the hash of the empty string), which is what a
// tlog-checkpoint of size 0 must carry; this program uses the RFC value.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const usageText = `usage:
  ledger-interop checkpoint  --checkpoint FILE (--vkey VKEY | --vkey-file FILE)
  ledger-interop root        --leaves LEAVES --checkpoint FILE (--vkey VKEY | --vkey-file FILE) [--allow-prefix]
  ledger-interop inclusion   --proof PROOF.json --checkpoint FILE (--vkey VKEY | --vkey-file FILE) [--leaves LEAVES]
  ledger-interop consistency --proof PROOF.json --old FILE --new FILE (--vkey VKEY | --vkey-file FILE)

VKEY is a note verifier key "<name>+<8 hex key id>+<base64(0x01 || ed25519 public key)>".
LEAVES holds base64 of each leaf's exact bytes, one leaf a line, in sequence order.
Exit 0 with "ok: ..." on success, 1 with "FAIL ..." when a check fails, 2 on bad usage.
`

// usageError marks errors in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usageText)
		os.Exit(2)
	}
	sub, args := os.Args[1], os.Args[2:]
	var (
		msg string
		err error
	)
	switch sub {
	case "checkpoint":
		msg, err = cmdCheckpoint(args)
	case "root":
		msg, err = cmdRoot(args)
	case "inclusion":
		msg, err = cmdInclusion(args)
	case "consistency":
		msg, err = cmdConsistency(args)
	case "help", "-h", "-help", "--help":
		fmt.Print(usageText)
		return
	default:
		fmt.Fprintf(os.Stderr, "ledger-interop: unknown subcommand %q\n%s", sub, usageText)
		os.Exit(2)
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "ledger-interop %s: %v\n%s", sub, err, usageText)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "FAIL %s: %v\n", sub, err)
		os.Exit(1)
	}
	fmt.Println("ok: " + msg)
}

// ---------------------------------------------------------------------------
// Command-line helpers

type flags struct {
	fs        *flag.FlagSet
	vkey      *string
	vkeyFile  *string
	required  []string
	stringPtr map[string]*string
}

func newFlags(sub string) *flags {
	fs := flag.NewFlagSet(sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := &flags{fs: fs, stringPtr: map[string]*string{}}
	f.vkey = fs.String("vkey", "", "note verifier key")
	f.vkeyFile = fs.String("vkey-file", "", "file holding the note verifier key on one line")
	return f
}

func (f *flags) str(name string, required bool) *string {
	p := f.fs.String(name, "", "")
	f.stringPtr[name] = p
	if required {
		f.required = append(f.required, name)
	}
	return p
}

func (f *flags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if f.fs.NArg() != 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", f.fs.Arg(0))}
	}
	for _, name := range f.required {
		if *f.stringPtr[name] == "" {
			return usageError{"missing --" + name}
		}
	}
	if (*f.vkey == "") == (*f.vkeyFile == "") {
		return usageError{"give exactly one of --vkey and --vkey-file"}
	}
	return nil
}

// verifierKey returns the verifier key text from --vkey or --vkey-file.
// A key file must hold exactly one line: the key, optionally followed by
// one newline. Nothing else (no CR, spaces or further lines) is tolerated.
func (f *flags) verifierKey() (string, error) {
	if *f.vkey != "" {
		return *f.vkey, nil
	}
	data, err := os.ReadFile(*f.vkeyFile)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(string(data), "\n")
	if strings.ContainsAny(s, "\r\n\t ") || s == "" {
		return "", fmt.Errorf("%s: must hold the verifier key alone on one line", *f.vkeyFile)
	}
	return s, nil
}

// ---------------------------------------------------------------------------
// Encoding helpers

// decodeHash parses a base64 hash with tlog.ParseHash and insists on the
// canonical encoding (padded standard base64 with zero unused bits), which is
// what tlog.Hash.String produces. Go's decoder alone accepts non-canonical
// spellings of the same bytes; our exports must be byte-for-byte canonical.
func decodeHash(what, s string) (tlog.Hash, error) {
	h, err := tlog.ParseHash(s)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("%s: %q is not standard base64 of a 32-byte hash", what, s)
	}
	if h.String() != s {
		return tlog.Hash{}, fmt.Errorf("%s: %q is not canonical base64 (canonical form is %q)", what, s, h.String())
	}
	return h, nil
}

// readLeaves reads a leaves export: one line per leaf, each the canonical
// standard base64 (with padding) of the leaf's exact bytes. Every line must
// end in a newline; empty lines are rejected (a leaf is a record, never empty,
// and an empty line would be ambiguous).
func readLeaves(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, nil
	}
	if data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%s: last line does not end in a newline", path)
	}
	lines := strings.Split(string(data[:len(data)-1]), "\n")
	leaves := make([][]byte, len(lines))
	for i, line := range lines {
		if line == "" {
			return nil, fmt.Errorf("%s: line %d (leaf %d) is empty", path, i+1, i)
		}
		b, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d (leaf %d): not standard base64: %v", path, i+1, i, err)
		}
		if base64.StdEncoding.EncodeToString(b) != line {
			return nil, fmt.Errorf("%s: line %d (leaf %d): not canonical base64", path, i+1, i)
		}
		leaves[i] = b
	}
	return leaves, nil
}

// readJSON decodes one JSON object into v, rejecting unknown fields and
// trailing data.
func readJSON(path string, v interface{}) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s: trailing data after the JSON object", path)
	}
	return nil
}

func decodeProof(what string, list []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		h, err := decodeHash(fmt.Sprintf("%s[%d]", what, i), s)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Checkpoints

type checkpoint struct {
	path       string
	origin     string
	size       int64
	root       tlog.Hash
	extensions []string
	keyName    string
	keyHash    uint32
	sigLines   int      // signature lines by the log key, each verified
	unknown    []string // signatures by other keys (ignored, reported)
}

// openCheckpoint reads a signed note, verifies it with note.Open against
// the single verifier key, then verifies every signature line by that key
// (note.Open verifies only the first line of each key and skips repeats),
// and parses the text as a C2SP tlog-checkpoint.
func openCheckpoint(path, vkey string) (*checkpoint, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("verifier key %q: %v", vkey, err)
	}
	msg, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unv *note.UnverifiedNoteError
		var inv *note.InvalidSignatureError
		switch {
		case errors.As(err, &unv):
			var others []string
			for _, s := range unv.Note.UnverifiedSigs {
				others = append(others, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return nil, fmt.Errorf("%s: note.Open: no signature by key %s+%08x (signatures by other keys: %v)",
				path, v.Name(), v.KeyHash(), others)
		case errors.As(err, &inv):
			return nil, fmt.Errorf("%s: note.Open: %v", path, err)
		default:
			return nil, fmt.Errorf("%s: note.Open: %v (a signed note is valid UTF-8 without control characters "+
				"other than newline: text ending in newline, one blank line, then lines \"\u2014 <name> <base64>\\n\")", path, err)
		}
	}
	cp := &checkpoint{path: path, keyName: v.Name(), keyHash: v.KeyHash()}
	for _, s := range n.UnverifiedSigs {
		cp.unknown = append(cp.unknown, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}

	// Every signature line by the log key must verify (C2SP signed-note:
	// "If the key name and ID match a known key, verifiers MUST verify the
	// signature"), and must be canonically encoded.
	sigs := msg[len(n.Text)+1:] // note.Open: text ends in "\n", then the blank line
	for i, line := range strings.Split(strings.TrimSuffix(string(sigs), "\n"), "\n") {
		rest := strings.TrimPrefix(line, "\u2014 ")
		sp := strings.IndexByte(rest, ' ')
		if rest == line || sp < 0 {
			return nil, fmt.Errorf("%s: signature line %d is malformed", path, i+1)
		}
		name, b64 := rest[:sp], rest[sp+1:]
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) < 5 {
			return nil, fmt.Errorf("%s: signature line %d: bad base64", path, i+1)
		}
		if name != v.Name() || binary.BigEndian.Uint32(raw[:4]) != v.KeyHash() {
			continue
		}
		if base64.StdEncoding.EncodeToString(raw) != b64 {
			return nil, fmt.Errorf("%s: signature line %d: signature is not canonical base64", path, i+1)
		}
		if len(raw) != 4+64 {
			return nil, fmt.Errorf("%s: signature line %d: %d signature bytes, want 4-byte key id + 64-byte Ed25519 signature", path, i+1, len(raw))
		}
		if !v.Verify([]byte(n.Text), raw[4:]) {
			return nil, fmt.Errorf("%s: signature line %d by %s+%08x does not verify", path, i+1, v.Name(), v.KeyHash())
		}
		cp.sigLines++
	}
	if cp.sigLines == 0 { // cannot happen after note.Open succeeded
		return nil, fmt.Errorf("%s: no signature line by the log key", path)
	}

	if err := parseCheckpointText(cp, n.Text); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return cp, nil
}

// parseCheckpointText parses a C2SP tlog-checkpoint body: at least three
// non-empty lines (origin, decimal size without leading zeros, base64 root),
// then optional non-empty extension lines. The size and root lines are also
// run through Go's own tlog.ParseTree (behind a "go.sum database tree"
// origin, the only one it accepts) and must give the same values.
func parseCheckpointText(cp *checkpoint, text string) error {
	if !strings.HasSuffix(text, "\n") {
		return errors.New("checkpoint text does not end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return fmt.Errorf("checkpoint text has %d line(s); a tlog-checkpoint needs origin, tree size and root hash", len(lines))
	}
	for i, l := range lines {
		if l == "" {
			return fmt.Errorf("checkpoint text line %d is empty (tlog-checkpoint lines must be non-empty)", i+1)
		}
	}
	cp.origin = lines[0]
	sizeLine := lines[1]
	size, err := strconv.ParseInt(sizeLine, 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != sizeLine {
		return fmt.Errorf("tree size line %q is not a decimal number without leading zeros or sign", sizeLine)
	}
	cp.size = size
	root, err := decodeHash("root hash line", lines[2])
	if err != nil {
		return err
	}
	cp.root = root
	cp.extensions = lines[3:]
	if size == 0 && root != emptyTreeRoot {
		return fmt.Errorf("tree size 0 needs root %s = SHA-256() (RFC 6962 MTH of the empty list), not %s (tlog.TreeHash(0) gives 32 zero bytes)", emptyTreeRoot, root)
	}

	goTree, err := tlog.ParseTree([]byte("go.sum database tree\n" + strings.Join(lines[1:], "\n") + "\n"))
	if err != nil {
		return fmt.Errorf("tlog.ParseTree rejects the size and root lines: %v", err)
	}
	if goTree.N != cp.size || goTree.Hash != cp.root {
		return fmt.Errorf("tlog.ParseTree reads size %d root %s, we read size %d root %s", goTree.N, goTree.Hash, cp.size, cp.root)
	}
	return nil
}

func (cp *checkpoint) describe() string {
	s := fmt.Sprintf("origin=%q size=%d root=%s signed by %s+%08x", cp.origin, cp.size, cp.root, cp.keyName, cp.keyHash)
	if cp.sigLines > 1 {
		s += fmt.Sprintf(" (%d lines, all verified)", cp.sigLines)
	}
	if len(cp.extensions) > 0 {
		s += fmt.Sprintf(", %d extension line(s)", len(cp.extensions))
	}
	if len(cp.unknown) > 0 {
		s += fmt.Sprintf(", ignored signatures by unknown keys %v", cp.unknown)
	}
	return s
}

// warnOrigin reports (without failing) a key name differing from the origin:
// C2SP tlog-checkpoint says the key name SHOULD match the origin line.
func warnOrigin(cp *checkpoint) {
	if cp.keyName != cp.origin {
		fmt.Fprintf(os.Stderr, "note: %s: key name %q differs from origin %q (C2SP: SHOULD match)\n", cp.path, cp.keyName, cp.origin)
	}
}

// ---------------------------------------------------------------------------
// Merkle tree

// emptyTreeRoot is MTH({}) = SHA-256() of RFC 6962 §2.1 / RFC 9162 §2.1.1.
// tlog.TreeHash(0) returns 32 zero bytes instead.
var emptyTreeRoot = tlog.Hash(sha256.Sum256(nil))

// treeRoot computes the RFC 6962 root over leaves with tlog: every leaf is
// added with tlog.StoredHashes (tlog.RecordHash of the leaf plus the interior
// hashes it completes), and the root is read back with tlog.TreeHash.
func treeRoot(leaves [][]byte) (tlog.Hash, error) {
	n := int64(len(leaves))
	if n == 0 {
		return emptyTreeRoot, nil
	}
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("stored hash %d not available (have %d)", x, len(stored))
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, leaf := range leaves {
		if tlog.StoredHashIndex(0, int64(i)) != int64(len(stored)) {
			return tlog.Hash{}, fmt.Errorf("internal: stored hash index mismatch at leaf %d", i)
		}
		hs, err := tlog.StoredHashes(int64(i), leaf, reader)
		if err != nil {
			return tlog.Hash{}, err
		}
		stored = append(stored, hs...)
	}
	if int64(len(stored)) != tlog.StoredHashCount(n) {
		return tlog.Hash{}, fmt.Errorf("internal: %d stored hashes, tlog.StoredHashCount(%d) = %d", len(stored), n, tlog.StoredHashCount(n))
	}
	return tlog.TreeHash(n, reader)
}

// ---------------------------------------------------------------------------
// Subcommands

func cmdCheckpoint(args []string) (string, error) {
	f := newFlags("checkpoint")
	cpPath := f.str("checkpoint", true)
	if err := f.parse(args); err != nil {
		return "", err
	}
	vkey, err := f.verifierKey()
	if err != nil {
		return "", err
	}
	cp, err := openCheckpoint(*cpPath, vkey)
	if err != nil {
		return "", err
	}
	warnOrigin(cp)
	return "checkpoint " + cp.describe(), nil
}

func cmdRoot(args []string) (string, error) {
	f := newFlags("root")
	leavesPath := f.str("leaves", true)
	cpPath := f.str("checkpoint", true)
	allowPrefix := f.fs.Bool("allow-prefix", false, "the leaves file may hold more leaves than the checkpoint's tree size")
	if err := f.parse(args); err != nil {
		return "", err
	}
	vkey, err := f.verifierKey()
	if err != nil {
		return "", err
	}
	cp, err := openCheckpoint(*cpPath, vkey)
	if err != nil {
		return "", err
	}
	leaves, err := readLeaves(*leavesPath)
	if err != nil {
		return "", err
	}
	count := int64(len(leaves))
	switch {
	case count < cp.size:
		return "", fmt.Errorf("%s holds %d leaves but the checkpoint's tree size is %d", *leavesPath, count, cp.size)
	case count > cp.size && !*allowPrefix:
		return "", fmt.Errorf("%s holds %d leaves but the checkpoint's tree size is %d (use --allow-prefix for an older checkpoint)", *leavesPath, count, cp.size)
	}
	root, err := treeRoot(leaves[:cp.size])
	if err != nil {
		return "", err
	}
	if root != cp.root {
		how := "tlog computes"
		if cp.size == 0 {
			how = "RFC 6962 MTH({}) is"
		}
		return "", fmt.Errorf("root mismatch: %s %s over the first %d leaves of %s, checkpoint %s says %s",
			how, root, cp.size, *leavesPath, cp.path, cp.root)
	}
	return fmt.Sprintf("root %s of the first %d of %d leaves matches checkpoint %s (origin %q)", root, cp.size, count, cp.path, cp.origin), nil
}

type inclusionJSON struct {
	Index    *int64    `json:"index"`
	TreeSize *int64    `json:"tree_size"`
	LeafHash *string   `json:"leaf_hash"`
	Proof    *[]string `json:"proof"`
	Root     *string   `json:"root"`
}

func cmdInclusion(args []string) (string, error) {
	f := newFlags("inclusion")
	proofPath := f.str("proof", true)
	cpPath := f.str("checkpoint", true)
	leavesPath := f.str("leaves", false)
	if err := f.parse(args); err != nil {
		return "", err
	}
	vkey, err := f.verifierKey()
	if err != nil {
		return "", err
	}
	cp, err := openCheckpoint(*cpPath, vkey)
	if err != nil {
		return "", err
	}
	var p inclusionJSON
	if err := readJSON(*proofPath, &p); err != nil {
		return "", err
	}
	if p.Index == nil || p.TreeSize == nil || p.LeafHash == nil || p.Proof == nil || p.Root == nil {
		return "", fmt.Errorf("%s: needs all of index, tree_size, leaf_hash, proof, root", *proofPath)
	}
	jsonRoot, err := decodeHash("root", *p.Root)
	if err != nil {
		return "", fmt.Errorf("%s: %v", *proofPath, err)
	}
	leafHash, err := decodeHash("leaf_hash", *p.LeafHash)
	if err != nil {
		return "", fmt.Errorf("%s: %v", *proofPath, err)
	}
	proof, err := decodeProof("proof", *p.Proof)
	if err != nil {
		return "", fmt.Errorf("%s: %v", *proofPath, err)
	}
	// Size and root come from the verified checkpoint only.
	if *p.TreeSize != cp.size {
		return "", fmt.Errorf("%s: tree_size %d differs from the verified checkpoint's size %d", *proofPath, *p.TreeSize, cp.size)
	}
	if jsonRoot != cp.root {
		return "", fmt.Errorf("%s: root %s differs from the verified checkpoint's root %s", *proofPath, jsonRoot, cp.root)
	}
	index := *p.Index
	if index < 0 || index >= cp.size {
		return "", fmt.Errorf("%s: index %d is outside the tree of size %d", *proofPath, index, cp.size)
	}
	leafNote := ""
	if *leavesPath != "" {
		leaves, err := readLeaves(*leavesPath)
		if err != nil {
			return "", err
		}
		if index >= int64(len(leaves)) {
			return "", fmt.Errorf("index %d is beyond the %d leaves in %s", index, len(leaves), *leavesPath)
		}
		if want := tlog.RecordHash(leaves[index]); want != leafHash {
			return "", fmt.Errorf("%s: leaf_hash %s differs from tlog.RecordHash(leaf %d) = %s", *proofPath, leafHash, index, want)
		}
		leafNote = ", leaf_hash = tlog.RecordHash(leaf bytes)"
	}
	if err := checkRecord(proof, cp.size, cp.root, index, leafHash); err != nil {
		return "", fmt.Errorf("%s: tlog.CheckRecord(index %d, size %d, %d proof hashes): %v", *proofPath, index, cp.size, len(proof), err)
	}
	return fmt.Sprintf("inclusion of leaf %d (%s) in checkpoint %s size %d root %s, %d proof hashes%s",
		index, leafHash, cp.path, cp.size, cp.root, len(proof), leafNote), nil
}

type consistencyJSON struct {
	OldSize *int64    `json:"old_size"`
	NewSize *int64    `json:"new_size"`
	OldRoot *string   `json:"old_root"`
	NewRoot *string   `json:"new_root"`
	Proof   *[]string `json:"proof"`
}

func cmdConsistency(args []string) (string, error) {
	f := newFlags("consistency")
	proofPath := f.str("proof", true)
	oldPath := f.str("old", true)
	newPath := f.str("new", true)
	if err := f.parse(args); err != nil {
		return "", err
	}
	vkey, err := f.verifierKey()
	if err != nil {
		return "", err
	}
	oldCP, err := openCheckpoint(*oldPath, vkey)
	if err != nil {
		return "", err
	}
	newCP, err := openCheckpoint(*newPath, vkey)
	if err != nil {
		return "", err
	}
	if oldCP.origin != newCP.origin {
		return "", fmt.Errorf("origins differ: %q in %s, %q in %s", oldCP.origin, *oldPath, newCP.origin, *newPath)
	}
	var p consistencyJSON
	if err := readJSON(*proofPath, &p); err != nil {
		return "", err
	}
	if p.OldSize == nil || p.NewSize == nil || p.OldRoot == nil || p.NewRoot == nil || p.Proof == nil {
		return "", fmt.Errorf("%s: needs all of old_size, new_size, old_root, new_root, proof", *proofPath)
	}
	oldRoot, err := decodeHash("old_root", *p.OldRoot)
	if err != nil {
		return "", fmt.Errorf("%s: %v", *proofPath, err)
	}
	newRoot, err := decodeHash("new_root", *p.NewRoot)
	if err != nil {
		return "", fmt.Errorf("%s: %v", *proofPath, err)
	}
	proof, err := decodeProof("proof", *p.Proof)
	if err != nil {
		return "", fmt.Errorf("%s: %v", *proofPath, err)
	}
	if *p.OldSize != oldCP.size || oldRoot != oldCP.root {
		return "", fmt.Errorf("%s: old_size/old_root %d %s differ from the verified old checkpoint's %d %s",
			*proofPath, *p.OldSize, oldRoot, oldCP.size, oldCP.root)
	}
	if *p.NewSize != newCP.size || newRoot != newCP.root {
		return "", fmt.Errorf("%s: new_size/new_root %d %s differ from the verified new checkpoint's %d %s",
			*proofPath, *p.NewSize, newRoot, newCP.size, newCP.root)
	}
	if oldCP.size > newCP.size {
		return "", fmt.Errorf("old checkpoint size %d is larger than new checkpoint size %d", oldCP.size, newCP.size)
	}
	if oldCP.size == 0 {
		// RFC 9162 §2.1.4 defines consistency proofs for 0 < m only, and
		// tlog.CheckTree rejects n < 1: there is nothing to check.
		return "", errors.New("old checkpoint has tree size 0: no consistency proof is defined from the empty tree (RFC 9162 §2.1.4, tlog.CheckTree needs old size >= 1)")
	}
	if err := checkTree(proof, newCP.size, newCP.root, oldCP.size, oldCP.root); err != nil {
		return "", fmt.Errorf("%s: tlog.CheckTree(old size %d, new size %d, %d proof hashes): %v", *proofPath, oldCP.size, newCP.size, len(proof), err)
	}
	return fmt.Sprintf("consistency of %s (size %d, root %s) with %s (size %d, root %s), %d proof hashes",
		oldCP.path, oldCP.size, oldCP.root, newCP.path, newCP.size, newCP.root, len(proof)), nil
}

// checkRecord and checkTree call tlog with the proof hashes exactly as given
// (tlog proofs are RFC 9162 proofs, same order), turning an internal panic
// into an error.
func checkRecord(p []tlog.Hash, size int64, root tlog.Hash, index int64, leaf tlog.Hash) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tlog panicked: %v", r)
		}
	}()
	return tlog.CheckRecord(tlog.RecordProof(p), size, root, index, leaf)
}

func checkTree(p []tlog.Hash, newSize int64, newRoot tlog.Hash, oldSize int64, oldRoot tlog.Hash) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tlog panicked: %v", r)
		}
	}()
	return tlog.CheckTree(tlog.TreeProof(p), newSize, newRoot, oldSize, oldRoot)
}
