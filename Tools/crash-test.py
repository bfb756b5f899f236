#!/usr/bin/env python3
"""Crash-consistency harness for the ledger: kills appending processes at random moments.

Starts `ledger append` processes (some at the same time, with readers running `ledger log` and
`ledger verify` beside them), kills them with SIGKILL after a random delay, and checks after every
round that:
  - every statement whose append was acknowledged (its line printed) is in the log exactly once,
    at the sequence number and entry id that were printed;
  - the log readers see is a contiguous chain (sequence numbers 0..n-1, no statement twice);
  - a reader never reports damage other than an interrupted write at the very end;
and at the end that the next writer cuts any torn tail (and says so) and `ledger verify` finds the
ledger intact.

Usage: Tools/crash-test.py [--ledger BIN] [--trials N] [--seed S]
Prints a summary and a closing line "N passed, M failed"; exits 1 on any failure.
Python 3 standard library only.
"""

import argparse
import base64
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(ledger, *args, stdin=None, check=True):
    result = subprocess.run([ledger, *args], input=stdin, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"`ledger {' '.join(args)}` failed ({result.returncode}): {result.stderr}")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledger", default=os.environ.get("LEDGER", str(REPO / ".build" / "debug" / "ledger")))
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"crash-test: seed {args.seed}, {args.trials} trials")
    work = Path(tempfile.mkdtemp(prefix="ledger-crash-"))
    ledger, led = args.ledger, str(work / "led")
    failures = []
    checks = 0

    run(ledger, "key", "generate", "--out", str(work / "admin.pem"))
    run(ledger, "key", "generate", "--out", str(work / "inv.pem"))
    run(ledger, "init", led, "--origin", "crash.test/ledger", "--admin-key", str(work / "admin.pem"))
    raw = next(l for l in run(ledger, "key", "public", str(work / "inv.pem")).stdout.splitlines() if l.startswith("raw (base64): "))
    reg = work / "reg.json"
    reg.write_text(json.dumps({"type": "party.registered", "id": "reg-inv", "party": "inv", "name": "Investigator",
                               "role": "investigator", "keys": [raw.split(": ", 1)[1]]}))
    run(ledger, "append", led, stdin=run(ledger, "sign", "--key", str(work / "admin.pem"), "--author", "admin", str(reg)).stdout)

    # Sign every statement up front, in parallel: one fresh statement per slot, never resent.
    batches = [[f"s{t}-{n}" for n in range(rng.choice([1, 1, 2, 3, 8, 40, 120]))] for t in range(args.trials)]

    def sign(statement_id):
        path = work / f"{statement_id}.json"
        path.write_text(json.dumps({"type": "fact.opened", "id": statement_id, "fact": f"fact-{statement_id}",
                                    "proposition": "P " + "x" * rng.randrange(200, 800)}))
        return statement_id, run(ledger, "sign", "--key", str(work / "inv.pem"), "--author", "inv", str(path)).stdout

    with ThreadPoolExecutor(max_workers=4) as pool:
        envelopes = dict(pool.map(sign, [s for batch in batches for s in batch]))

    acknowledged = {}   # statement id -> (seq, entry id)
    stats = {"killed": 0, "finished": 0, "refused": 0, "torn_cut": 0, "reader_runs": 0, "in_progress_notes": 0}
    lock = threading.Lock()
    nonlocal_checks = [0]

    def writer(batch, delay):
        proc = subprocess.Popen([ledger, "append", led, "--lock-timeout", "60"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proc.stdin.write("".join(envelopes[s] for s in batch))
        proc.stdin.close()
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.wait()
        with lock:
            stats["killed" if killed else "finished"] += 1
            if "Recovered from an interrupted write" in err:
                stats["torn_cut"] += 1
            if proc.returncode not in (0, -signal.SIGKILL):
                stats["refused"] += 1
                failures.append(f"an append exited {proc.returncode}: {err.strip()}")
            # A killed writer may be cut in the middle of printing a line (stdout to a pipe is
            # written in blocks): only whole, newline-terminated lines are acknowledgements.
            lines = out.split("\n")[:-1]
            printed = [int(line.split()[0]) for line in lines]
            if printed and printed != list(range(printed[0], printed[0] + len(printed))):
                failures.append(f"a group commit was interleaved with another: sequence numbers {printed}")
            for line in lines:
                seq, entry, sid = line.split()
                if sid in acknowledged:
                    failures.append(f"{sid} acknowledged twice")
                acknowledged[sid] = (int(seq), entry)

    def merkle_root(leaves):
        """RFC 6962 root over leaf bytes, written out independently of the ledger's code."""
        if not leaves:
            return hashlib.sha256(b"").digest()
        if len(leaves) == 1:
            return hashlib.sha256(b"\x00" + leaves[0]).digest()
        k = 1
        while k * 2 < len(leaves):
            k *= 2
        return hashlib.sha256(b"\x01" + merkle_root(leaves[:k]) + merkle_root(leaves[k:])).digest()

    def reader():
        log = run(ledger, "log", led, "--json", check=False)
        # The tree a reader sees must match the log prefix it sees: a proof at the size it read
        # must carry the root of exactly those leaves.
        leaves = [base64.b64decode(l) for l in run(ledger, "export", "leaves", led, check=False).stdout.split()]
        if leaves:
            proof = run(ledger, "prove", "inclusion", led, "0", "--size", str(len(leaves)), "--json", check=False)
            with lock:
                nonlocal_checks[0] += 1
                if proof.returncode != 0 or base64.b64decode(json.loads(proof.stdout)["root"]) != merkle_root(leaves):
                    failures.append(f"a reader's tree at size {len(leaves)} does not match the leaves it read: {proof.stderr.strip()}")
        verify = run(ledger, "verify", led, check=False)
        with lock:
            stats["reader_runs"] += 1
            if "append was in progress" in verify.stderr:
                stats["in_progress_notes"] += 1
            if log.returncode != 0:
                failures.append(f"ledger log failed during appends: {log.stderr.strip()}")
            check_chain(log.stdout, "a reader during appends")
            if verify.returncode != 0:
                bad = [l for l in verify.stdout.splitlines() if l.startswith("entry ")
                       and "incomplete record" not in l and "never acknowledged" not in l]
                if bad:
                    failures.append(f"a reader saw damage during appends: {bad[:3]}")

    def check_chain(text, who):
        nonlocal checks
        checks += 1
        entries = [json.loads(l) for l in text.splitlines()]
        if [e["seq"] for e in entries] != list(range(len(entries))):
            failures.append(f"{who} saw sequence numbers that are not contiguous")
        ids = [e["id"] for e in entries]
        if len(ids) != len(set(ids)):
            failures.append(f"{who} saw a statement twice")
        return {e["id"]: (e["seq"], e["entry_id"]) for e in entries}

    trial = 0
    while trial < args.trials:
        group = min(rng.choice([1, 1, 1, 2, 3]), args.trials - trial)
        threads = [threading.Thread(target=writer, args=(batches[trial + i], rng.uniform(0, 0.12))) for i in range(group)]
        if rng.random() < 0.3:
            threads.append(threading.Thread(target=reader))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        trial += group
        present = check_chain(run(ledger, "log", led, "--json").stdout, "the log after a round")
        for sid, where in acknowledged.items():
            if present.get(sid) != where:
                failures.append(f"acknowledged {sid} at {where} but the log has {present.get(sid)}")

    # The next writer cuts any torn tail; then the whole ledger must verify.
    final = work / "final.json"
    final.write_text(json.dumps({"type": "fact.opened", "id": "final", "fact": "final", "proposition": "P"}))
    last = run(ledger, "append", led, stdin=run(ledger, "sign", "--key", str(work / "inv.pem"), "--author", "inv", str(final)).stdout)
    if "Recovered from an interrupted write" in last.stderr:
        stats["torn_cut"] += 1
    verify = run(ledger, "verify", led, check=False)
    checks += 1
    if verify.returncode != 0:
        failures.append(f"the ledger does not verify at the end: {verify.stdout[-500:]}")
    present = check_chain(run(ledger, "log", led, "--json").stdout, "the final log")
    lost = [sid for sid, where in acknowledged.items() if present.get(sid) != where]
    if lost:
        failures.append(f"{len(lost)} acknowledged statements are missing or moved: {lost[:5]}")
    checks += len(acknowledged)

    print(f"crash-test: {args.trials} appends ({stats['killed']} killed, {stats['finished']} finished), "
          f"{len(acknowledged)} statements acknowledged, {len(present) - 3} in the log, "
          f"{stats['torn_cut']} torn tails cut on reopen, {stats['reader_runs']} concurrent reader runs "
          f"({stats['in_progress_notes']} saw an append in progress)")
    for failure in failures[:20]:
        print(f"FAIL: {failure}")
    if not failures:
        subprocess.run(["rm", "-rf", str(work)])
    else:
        print(f"ledger kept for inspection: {led}")
    checks += nonlocal_checks[0]
    print(f"{checks} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
