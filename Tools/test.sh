#!/usr/bin/env bash
# The test suite: every Swift test, then the interoperability checks against outside tools.
# Installs what a fresh machine lacks when run as root (OpenSSL headers, Python 3).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev pkg-config)
command -v python3 >/dev/null || missing+=(python3)
command -v openssl >/dev/null || missing+=(openssl)
# Fault-injection tests run the ledger under strace.
command -v strace >/dev/null || missing+=(strace)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "Missing: ${missing[*]}. Install them (apt-get install -y ${missing[*]}) or run as root." >&2
        exit 3
    fi
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

swift build --build-tests
swift test --skip-build

# Crash consistency: appending processes killed with SIGKILL at random moments, readers alongside.
python3 Tools/crash-test.py --ledger .build/debug/ledger --trials 120

# Interoperability: Go's sumdb/note and sumdb/tlog check our checkpoints, roots and proofs
# (installs golang-go and golang-golang-x-mod-dev from Debian when missing).
Tools/interop/run.sh .build/debug/ledger Ledger/amnesty-2020
