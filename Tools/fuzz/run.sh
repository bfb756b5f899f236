#!/usr/bin/env bash
# Fuzzes the envelope, event and record decoders, the append checks, the reading of saved rule
# states (inputs that start with ELSTATE3) and of projection snapshots (ELSNAP3) with libFuzzer.
# Snapshot inputs run at tens a second (each is replayed and queried beside a small ledger): to
# fuzz them alone, give the binary a directory holding only corpus/snapshot-seed.
#   Tools/fuzz/run.sh [SECONDS]   (default 300)
# New interesting inputs go to Tools/fuzz/corpus-new/ (not committed); a crashing input is written
# to Tools/fuzz/artifacts/. Copy a crasher into Tools/fuzz/corpus/ once fixed: the test suite
# replays that directory (FuzzCorpusTests), so it stays a regression test.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-300}
swift build -c release --scratch-path ../../.build-fuzz \
    -Xswiftc -sanitize=fuzzer,address --product LedgerFuzz
mkdir -p corpus-new artifacts
exec ../../.build-fuzz/release/LedgerFuzz corpus-new corpus \
    -max_total_time="$seconds" -max_len=32768 -artifact_prefix=artifacts/ -print_final_stats=1
