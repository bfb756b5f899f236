#!/usr/bin/env python3
"""Builds the sample ledger Ledger/amnesty-2020 from Tools/sample/amnesty-2020.json.

Runs only the `ledger` CLI: `ledger init`, then for each batch of the description
`ledger sign` (and `ledger cosign`) for every statement, and one `ledger append` for the whole
batch. Each evidence file is stored with `ledger blob add` after the batch that attaches it. It
ends with `ledger verify` and `ledger blob check`. All keys and times are fixed, and Ed25519 is
deterministic, so every run writes a byte-identical ledger.

Usage:
    Tools/make-sample-ledger.py [--ledger BIN] [--description FILE] [OUT_DIR]
    Tools/make-sample-ledger.py --check [--ledger BIN]

BIN defaults to $LEDGER, or else to .build/debug/ledger in the repository. OUT_DIR defaults to
Ledger/amnesty-2020. The script deletes an existing OUT_DIR only when it is that sample path and
holds a ledger. Any other OUT_DIR must be new or empty.

--check builds the ledger in a temporary directory and compares it byte for byte with the
committed Ledger/amnesty-2020, ignoring the `lock` file. Nothing in the repository is changed.

Python 3 standard library only.
"""

import argparse
import base64
import filecmp
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "Ledger" / "amnesty-2020"
DEFAULT_DESCRIPTION = REPO / "Tools" / "sample" / "amnesty-2020.json"
DEFAULT_LEDGER = REPO / ".build" / "debug" / "ledger"
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PLACEHOLDER = re.compile(r"^\$\{(key|entry):([^}]+)\}$")
# Files that are not part of the ledger's content. `lock` is the empty single-writer lock file.
IGNORED = {"lock"}


class Failure(Exception):
    """A problem with the description, the output directory or a CLI call."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", help="output directory (default: Ledger/amnesty-2020)")
    parser.add_argument("--ledger", help="the ledger binary (default: $LEDGER, else .build/debug/ledger)")
    parser.add_argument("--description", default=str(DEFAULT_DESCRIPTION), help="the case description (JSON)")
    parser.add_argument("--check", action="store_true",
                        help="build in a temporary directory and compare with the committed sample")
    args = parser.parse_args()

    ledger = Path(args.ledger or os.environ.get("LEDGER") or DEFAULT_LEDGER)
    try:
        if not (ledger.is_file() and os.access(ledger, os.X_OK)):
            raise Failure(f"{ledger} is not an executable file. Build it with `swift build`, or name it "
                          "with --ledger BIN or $LEDGER.", 2)
        description_path = Path(args.description).resolve()
        description = load_description(description_path)
        ledger = ledger.resolve()
        prepared = prepare(ledger, description, description_path.parent)
        if args.check:
            if args.out:
                raise Failure("--check takes no OUT_DIR; it compares with Ledger/amnesty-2020.", 2)
            with tempfile.TemporaryDirectory(prefix="sample-ledger-check-") as scratch:
                built = Path(scratch) / "amnesty-2020"
                build(ledger, description, prepared, built, quiet=True)
                differences = compare(SAMPLE_DIR, built)
            if differences:
                for line in differences:
                    print(line)
                raise Failure(f"{SAMPLE_DIR} differs from a fresh build; regenerate it with Tools/make-sample-ledger.py.")
            print(f"{SAMPLE_DIR}: identical to a fresh build.")
            return 0
        out = Path(args.out) if args.out else SAMPLE_DIR
        prepare_output(out)
        build(ledger, description, prepared, out, quiet=False)
        return 0
    except Failure as failure:
        print(f"make-sample-ledger: {failure}", file=sys.stderr)
        return failure.status


# --- The description -----------------------------------------------------------------------------

def load_description(path):
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError) as error:
        raise Failure(f"cannot read {path}: {error}", 2)
    for field in ("origin", "keys", "parties", "genesis", "batches"):
        if field not in d:
            raise Failure(f"{path}: the description has no \"{field}\".", 2)
    return d


def check_description(d, evidence):
    """Checks what the ledger cannot check: fixed and ordered times, parties that agree with their
    registrations, and quotes that are verbatim in the article they cite."""
    texts = {info["uri"]: info["text"] for info in evidence.values() if "uri" in info}
    genesis = d["genesis"]
    for field in ("signed_at", "accepted_at"):
        require_time(genesis.get(field), f"genesis {field}")
    last = genesis["accepted_at"]
    seen = set()
    for n, batch in enumerate(d["batches"], 1):
        accepted = require_time(batch.get("accepted_at"), f"batch {n} accepted_at")
        if accepted < last:
            raise Failure(f"batch {n} is accepted at {accepted}, before the previous batch ({last}).", 2)
        last = accepted
        for statement in batch["statements"]:
            event = statement["event"]
            sid = event.get("id", "?")
            if sid in seen:
                raise Failure(f"statement id {sid} is used twice.", 2)
            seen.add(sid)
            signed = require_time(statement.get("signed_at"), f"statement {sid} signed_at")
            if signed > accepted:
                raise Failure(f"statement {sid} is signed at {signed}, after its batch is accepted ({accepted}).", 2)
            for field in ("v", "author", "signed_at"):
                if field in event:
                    raise Failure(f"statement {sid}: put \"{field}\" beside the event, not in it; the script sets it.", 2)
            author = statement.get("author")
            if author not in d["parties"]:
                raise Failure(f"statement {sid}: author {author!r} is not in \"parties\".", 2)
            for name in [statement.get("key", author)] + statement.get("cosign", []):
                if d["keys"].get(name, {}).get("party") != author:
                    raise Failure(f"statement {sid}: key {name!r} is not a key of {author!r} in \"keys\".", 2)
            if event.get("type") == "party.registered":
                party = d["parties"].get(event.get("party"), {})
                if (event.get("name"), event.get("role")) != (party.get("name"), party.get("role")):
                    raise Failure(f"statement {sid} registers {event.get('party')!r} with another name or role "
                                  "than \"parties\" gives.", 2)
            if event.get("type") == "evidence.attached" and event.get("evidence") in evidence:
                info = evidence[event["evidence"]]
                for field in ("sha256", "size", "media_type"):
                    if event.get(field) != info[field]:
                        raise Failure(f"statement {sid}: {field} {event.get(field)!r} does not match "
                                      f"{info['file']} ({info[field]!r}).", 2)
            source = event.get("source") or {}
            if source.get("uri", "").startswith("ni:") and source["uri"] not in texts:
                raise Failure(f"statement {sid} cites {source['uri']}, which is no file in \"evidence_files\".", 2)
            if "quote" in source and source.get("uri") in texts and source["quote"] not in texts[source["uri"]]:
                raise Failure(f"statement {sid}: the quote is not verbatim in the article it cites:\n  {source['quote']}", 2)


def require_time(value, what):
    if not isinstance(value, str) or not TIME.match(value):
        raise Failure(f"{what} must be an RFC 3339 UTC time like 2020-09-21T08:00:00Z; found {value!r}.", 2)
    return value


def load_evidence(d, base):
    """Reads each evidence file and checks it against its recorded hash, size and 'ni' URI."""
    out = {}
    for name, info in d.get("evidence_files", {}).items():
        path = base / info["file"]
        try:
            data = path.read_bytes()
        except OSError as error:
            raise Failure(f"cannot read evidence {name}: {error}", 2)
        digest = hashlib.sha256(data).digest()
        if digest.hex() != info["sha256"] or len(data) != info["size"]:
            raise Failure(f"{path} has SHA-256 {digest.hex()} and {len(data)} bytes; the description records "
                          f"{info['sha256']} and {info['size']} bytes.", 2)
        ni = "ni:///sha-256;" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if info.get("uri", ni) != ni:
            raise Failure(f"evidence {name}: uri {info['uri']} should be {ni}.", 2)
        out[name] = dict(info, path=path, text=data.decode("utf-8"))
    return out


def substitute(value, public_keys, entries):
    """Replaces ${key:NAME} and ${entry:STATEMENT} placeholders (whole string values only)."""
    if isinstance(value, dict):
        return {k: substitute(v, public_keys, entries) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, public_keys, entries) for v in value]
    if isinstance(value, str):
        match = PLACEHOLDER.match(value)
        if match:
            kind, name = match.groups()
            table = public_keys if kind == "key" else entries
            if name not in table:
                later = " (not yet appended at this point)" if kind == "entry" else ""
                raise Failure(f"placeholder {value}: no {kind} named {name!r}{later}.", 2)
            return table[name]
    return value


# --- The output directory ------------------------------------------------------------------------

def prepare_output(out):
    """Makes `out` a new or empty directory. Deletes a ledger only at the sample path."""
    if out.is_symlink():
        raise Failure(f"{out} is a symbolic link; refusing to touch it.", 2)
    if not out.exists():
        out.mkdir(parents=True)
        return
    if not out.is_dir():
        raise Failure(f"{out} exists and is not a directory; refusing to touch it.", 2)
    if not any(out.iterdir()):
        return
    if out.resolve() != SAMPLE_DIR.resolve():
        raise Failure(f"{out} is not empty and is not the sample path {SAMPLE_DIR}; refusing to delete it. "
                      "Name a new or empty directory.", 2)
    format_file = out / "FORMAT"
    if not format_file.is_file() or not format_file.read_text(errors="replace").startswith("evidence-ledger log"):
        raise Failure(f"{out} does not hold a ledger (no FORMAT file); refusing to delete it.", 2)
    shutil.rmtree(out)
    out.mkdir()


# --- Building ------------------------------------------------------------------------------------

def run(ledger, *args, stdin=None):
    command = [str(ledger)] + [str(a) for a in args]
    result = subprocess.run(command, capture_output=True, text=True, input=stdin)
    if result.returncode != 0:
        raise Failure(f"`{' '.join(command)}` failed with exit status {result.returncode}:\n"
                      f"{result.stderr.strip() or result.stdout.strip()}", result.returncode)
    return result.stdout


def public_key(ledger, key_file):
    for line in run(ledger, "key", "public", key_file).splitlines():
        if line.startswith("raw (base64): "):
            return line[len("raw (base64): "):].strip()
    raise Failure(f"`ledger key public {key_file}` printed no raw key.")


def prepare(ledger, d, base):
    """Reads the keys and evidence files and checks the description, before anything is written."""
    key_files = {name: base / info["file"] for name, info in d["keys"].items()}
    public_keys = {name: public_key(ledger, path) for name, path in key_files.items()}
    evidence = load_evidence(d, base)
    check_description(d, evidence)
    if any(batch.get("checkpoint") for batch in d["batches"]) and "file" not in d.get("log_key", {}):
        raise Failure("The description asks for checkpoints but names no log_key file.", 2)
    log_key = base / d["log_key"]["file"] if "file" in d.get("log_key", {}) else None
    return key_files, public_keys, evidence, log_key


def build(ledger, d, prepared, out, quiet):
    say = (lambda *a: None) if quiet else print
    key_files, public_keys, evidence, log_key = prepared
    genesis = d["genesis"]
    admin = d["parties"][genesis["party"]]
    say(run(ledger, "init", out, "--origin", d["origin"], "--admin-key", key_files[genesis["key"]],
            "--admin-party", genesis["party"], "--admin-name", admin["name"],
            "--signed-at", genesis["signed_at"], "--accepted-at", genesis["accepted_at"]).strip())
    entries = {}
    with tempfile.TemporaryDirectory(prefix="sample-ledger-") as scratch:
        scratch = Path(scratch)
        for n, batch in enumerate(d["batches"], 1):
            envelopes, ids = [], []
            for statement in batch["statements"]:
                event = substitute(statement["event"], public_keys, entries)
                author = statement["author"]
                stem = scratch / f"{n:02d}-{len(envelopes):02d}-{event['id'].replace(':', '_')}"
                event_file = stem.with_suffix(".event.json")
                event_file.write_text(json.dumps(event, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
                envelope = run(ledger, "sign", "--key", key_files[statement.get("key", author)], "--author", author,
                               "--signed-at", statement["signed_at"], event_file)
                for cosigner in statement.get("cosign", []):
                    envelope = run(ledger, "cosign", "--key", key_files[cosigner], "-", stdin=envelope)
                envelope_file = stem.with_suffix(".envelope.json")
                envelope_file.write_text(envelope, encoding="utf-8")
                envelopes.append(envelope_file)
                ids.append(event["id"])
            printed = [line.split() for line in run(ledger, "append", out, "--accepted-at", batch["accepted_at"], *envelopes).splitlines()]
            if [line[2:] for line in printed] != [[sid] for sid in ids] or any(len(line) != 3 for line in printed):
                raise Failure(f"`ledger append` for batch {n} printed {printed!r}; expected a sequence number, "
                              f"an entry id and the statement id for each of {len(ids)} statements.")
            for sid, (seq, entry, _) in zip(ids, printed):
                entries[sid] = entry
                say(f"{seq:>3} {entry} {batch['accepted_at']} {sid}")
            for statement in batch["statements"]:
                event = statement["event"]
                if event["type"] == "evidence.attached" and event["evidence"] in evidence:
                    info = evidence[event["evidence"]]
                    stored = run(ledger, "blob", "add", out, info["path"]).split()
                    if stored[:2] != [info["sha256"], str(info["size"])]:
                        raise Failure(f"`ledger blob add` stored {stored!r}; expected {info['sha256']} {info['size']}.")
                    say(f"    blob {info['sha256']} {info['size']} bytes ({event['evidence']})")
            if batch.get("checkpoint"):
                run(ledger, "checkpoint", out, "--key", str(log_key))
                say(f"    checkpoint of {int(printed[-1][0]) + 1} entries signed with {d['log_key']['file']}")
    say(run(ledger, "verify", out).strip())
    say(run(ledger, "blob", "check", out).strip())


def compare(expected, actual):
    """Lists the differences between two directory trees, ignoring IGNORED file names."""
    differences = []

    def walk(a, b, where):
        names = (set(os.listdir(a)) | set(os.listdir(b))) - IGNORED
        for name in sorted(names):
            pa, pb, rel = a / name, b / name, f"{where}{name}"
            if not pa.exists():
                differences.append(f"only in the fresh build: {rel}")
            elif not pb.exists():
                differences.append(f"only in {expected}: {rel}")
            elif pa.is_dir() and pb.is_dir():
                walk(pa, pb, rel + "/")
            elif pa.is_dir() or pb.is_dir() or not filecmp.cmp(pa, pb, shallow=False):
                differences.append(f"differs: {rel}")

    if not expected.is_dir():
        return [f"{expected} does not exist"]
    walk(expected, actual, "")
    return differences


if __name__ == "__main__":
    sys.exit(main())
