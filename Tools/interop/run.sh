#!/usr/bin/env bash
# Interop check: Go's golang.org/x/mod/sumdb/note and sumdb/tlog verify the sample ledger's signed
# checkpoints, its root against the exported leaves, and our inclusion and consistency proofs.
#   Tools/interop/run.sh [LEDGER-BINARY] [LEDGER-DIR]
# Installs golang-go and golang-golang-x-mod-dev from Debian when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
ledger=${1:-.build/debug/ledger}
dir=${2:-Ledger/amnesty-2020}
out=$(mktemp -d "${TMPDIR:-/tmp}/ledger-interop.XXXXXX")
trap 'rm -rf "$out"' EXIT

notes=("$dir"/checkpoints/*.note)
[ "${#notes[@]}" -ge 2 ] || { echo "interop: $dir needs at least two checkpoints" >&2; exit 2; }
old=${notes[0]} new=${notes[${#notes[@]} - 1]}
m=$((10#$(basename "$old" | cut -c1-20))) n=$((10#$(basename "$new" | cut -c1-20)))

cp "$dir/checkpoints/log.vkey" "$out/vkey.txt"
cp "$new" "$out/checkpoint.txt"
cp "$old" "$out/old-checkpoint.txt"
"$ledger" export leaves "$dir" --to "$n" >"$out/leaves.txt"
for i in 0 1 $((m - 1)) $((n / 2)) $((n - 1)); do
    "$ledger" prove inclusion "$dir" "$i" --size "$n" --json >"$out/inclusion-$i.json"
done
for i in 0 $((m - 1)); do
    "$ledger" prove inclusion "$dir" "$i" --size "$m" --json >"$out/inclusion-old-$i.json"
done
"$ledger" prove consistency "$dir" --from "$m" --to "$n" --json >"$out/consistency.json"
echo "interop: exported $n leaves, checkpoints of $m and $n entries, proofs from $ledger"
Tools/interop/interop-check.sh "$out"
