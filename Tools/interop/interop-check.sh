#!/usr/bin/env bash
# interop-check.sh DIR
#
# Checks an EvidenceLedger export with Go's golang.org/x/mod/sumdb/note and
# golang.org/x/mod/sumdb/tlog (DESIGN.md wire formats 3, 4, 5, 8).
#
# DIR holds:
#   vkey.txt             the log's note verifier key, one line
#   checkpoint.txt       newest signed checkpoint (C2SP tlog-checkpoint in a signed note)
#   old-checkpoint.txt   an older signed checkpoint of the same log
#   leaves.txt           base64 of each leaf's exact bytes, one a line, all leaves of checkpoint.txt
#   inclusion-*.json     inclusion proofs against checkpoint.txt
#                        (inclusion-old-*.json: against old-checkpoint.txt)
#   consistency.json     consistency proof from old-checkpoint.txt to checkpoint.txt
#
# On Debian 12 (bookworm) as root it installs what is missing with apt
# (golang-go, golang-golang-x-mod-dev) and builds ledger-interop.go offline in
# GOPATH mode against /usr/share/gocode; nothing is fetched from a module proxy
# and the Go build cache lives in a temporary directory.
# Prints one line per check, then "N passed, M failed"; exits 1 on any failure.
#
# Environment: INTEROP_BUILD_DIR=DIR keeps the build (and the ledger-interop
# binary) in DIR instead of a temporary directory removed at exit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/ledger-interop.go"

if [ "$#" -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 EXPORT-DIR" >&2
    exit 2
fi
dir="$(cd "$1" && pwd)"

# --- Debian packages ---------------------------------------------------------
packages=(golang-go golang-golang-x-mod-dev)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -qx 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "interop-check: missing Debian packages ${missing[*]} and not root to install them" >&2
        exit 2
    fi
    echo "interop-check: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # No recommends: the checker needs no cgo (CGO_ENABLED=0 below), so gcc,
    # g++ and pkg-config that golang-1.19-go recommends are not needed.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

gosrc=/usr/share/gocode
for pkg in note tlog; do
    if [ ! -d "$gosrc/src/golang.org/x/mod/sumdb/$pkg" ]; then
        echo "interop-check: $gosrc/src/golang.org/x/mod/sumdb/$pkg not found (golang-golang-x-mod-dev)" >&2
        exit 2
    fi
done
gobin=/usr/lib/go/bin/go            # Debian's golang-go, whatever else is on PATH
[ -x "$gobin" ] || gobin="$(command -v go)"

# --- build ---------------------------------------------------------------------
if [ -n "${INTEROP_BUILD_DIR:-}" ]; then
    build="$INTEROP_BUILD_DIR"
    mkdir -p "$build"
    build="$(cd "$build" && pwd)"
else
    build="$(mktemp -d "${TMPDIR:-/tmp}/interop-check.XXXXXX")"
    trap 'rm -rf "$build"' EXIT
fi
bin="$build/ledger-interop"

# GOPATH mode (GO111MODULE=off): imports resolve in $build/gopath, then in
# Debian's /usr/share/gocode. GOENV=off ignores any user go env file;
# GOPROXY=off and GOFLAGS= keep module machinery out; caches stay in $build.
if ! env GO111MODULE=off GOENV=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local GOWORK=off \
    CGO_ENABLED=0 GOPATH="$build/gopath:$gosrc" GOCACHE="$build/gocache" \
    HOME="$build" \
    "$gobin" build -o "$bin" "$src"; then
    echo "FAIL build of $src"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "interop-check: built ledger-interop with $("$gobin" version | cut -d' ' -f3) against x/mod $(dpkg-query -W -f='${Version}' golang-golang-x-mod-dev)"

# --- checks ------------------------------------------------------------------
passed=0
failed=0

# check NAME EXPECT CMD...   EXPECT is "accept" or "reject" (a negative control)
check() {
    local name="$1" expect="$2" out rc
    shift 2
    set +e
    out="$("$@" 2>&1)"
    rc=$?
    set -e
    out="$(printf '%s' "$out" | tr '\n' ' ' | sed 's/ *$//')"
    if [ "$expect" = accept ] && [ "$rc" -eq 0 ]; then
        passed=$((passed + 1)); echo "PASS $name: $out"
    elif [ "$expect" = reject ] && [ "$rc" -eq 1 ]; then
        passed=$((passed + 1)); echo "PASS $name (rejected as expected): $out"
    else
        failed=$((failed + 1)); echo "FAIL $name (exit $rc, expected to $expect): $out"
    fi
}

missing_file() {
    failed=$((failed + 1)); echo "FAIL $1: $dir/$1 is missing"
}

for f in vkey.txt checkpoint.txt old-checkpoint.txt leaves.txt consistency.json; do
    [ -f "$dir/$f" ] || missing_file "$f"
done

vk=(--vkey-file "$dir/vkey.txt")
have() { [ -f "$dir/$1" ]; }
if have vkey.txt; then
    for cp in checkpoint.txt old-checkpoint.txt; do
        if have "$cp"; then
            check "checkpoint $cp" accept "$bin" checkpoint --checkpoint "$dir/$cp" "${vk[@]}"
        fi
    done
    if have leaves.txt && have checkpoint.txt; then
        check "root of leaves.txt = checkpoint.txt" accept \
            "$bin" root --leaves "$dir/leaves.txt" --checkpoint "$dir/checkpoint.txt" "${vk[@]}"
    fi
    if have leaves.txt && have old-checkpoint.txt; then
        check "root of leaves.txt prefix = old-checkpoint.txt" accept \
            "$bin" root --allow-prefix --leaves "$dir/leaves.txt" --checkpoint "$dir/old-checkpoint.txt" "${vk[@]}"
    fi

    shopt -s nullglob
    proofs=("$dir"/inclusion-*.json)
    shopt -u nullglob
    if [ "${#proofs[@]}" -eq 0 ]; then
        failed=$((failed + 1)); echo "FAIL inclusion: no inclusion-*.json in $dir"
    fi
    leafargs=()
    if have leaves.txt; then leafargs=(--leaves "$dir/leaves.txt"); fi
    for p in "${proofs[@]}"; do
        name="$(basename "$p")"
        case "$name" in
            inclusion-old-*) cp=old-checkpoint.txt ;;
            *) cp=checkpoint.txt ;;
        esac
        check "inclusion $name in $cp" accept \
            "$bin" inclusion --proof "$p" --checkpoint "$dir/$cp" "${vk[@]}" "${leafargs[@]}"
    done

    if have consistency.json && have old-checkpoint.txt && have checkpoint.txt; then
        check "consistency old-checkpoint.txt -> checkpoint.txt" accept \
            "$bin" consistency --proof "$dir/consistency.json" --old "$dir/old-checkpoint.txt" --new "$dir/checkpoint.txt" "${vk[@]}"
    fi

    # Negative controls: the checker must not accept everything.
    neg="$build/negative"
    mkdir -p "$neg"
    if have checkpoint.txt; then
        # Append a digit to the tree size line (line 2) of the signed checkpoint.
        awk 'NR == 2 { $0 = $0 "0" } { print }' "$dir/checkpoint.txt" >"$neg/checkpoint.txt"
        check "negative control: checkpoint.txt with altered size line" reject \
            "$bin" checkpoint --checkpoint "$neg/checkpoint.txt" "${vk[@]}"
    fi
    if have checkpoint.txt && have leaves.txt && [ -s "$dir/leaves.txt" ]; then
        # Append one byte to the last leaf: same count, the root must differ.
        if tail -n 1 "$dir/leaves.txt" | base64 -d >"$neg/last-leaf" 2>/dev/null; then
            { sed '$d' "$dir/leaves.txt"
              { cat "$neg/last-leaf"; printf 'x'; } | base64 -w 0; echo
            } >"$neg/leaves.txt"
            check "negative control: leaves.txt with its last leaf altered" reject \
                "$bin" root --leaves "$neg/leaves.txt" --checkpoint "$dir/checkpoint.txt" "${vk[@]}"
        else
            echo "SKIP negative control on leaves.txt: its last line is not base64"
        fi
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
