#!/usr/bin/python3
# The send-file examples in C and Python stream a 64 MiB file through a
# pipe whose queue is bounded to 1 MiB, pausing on queue-drained: each
# sender talks to each receiver, never fails with QUEUE_FULL, and the
# file arrives intact (same size and SHA-256). Prints TAP.
#
# Usage: test-send-file.py C-SEND-FILE PY-SEND-FILE
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import hashlib
import os
import random
import subprocess
import sys
import tempfile

SIZE = 64 * 1024 * 1024

os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="np-send-file-test-")


def make_file(path):
    """Writes SIZE bytes that look random; returns their SHA-256."""
    generator = random.Random(1234)
    checksum = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(SIZE // (1024 * 1024)):
            block = generator.randbytes(1024 * 1024)
            checksum.update(block)
            out.write(block)
    return checksum.hexdigest()


def file_sha256(path):
    checksum = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1024 * 1024), b""):
            checksum.update(block)
    return checksum.hexdigest()


def run_case(kinds, sender_kind, receiver_kind, source, digest, workdir, name):
    output = os.path.join(workdir, f"{name}.out")
    receiver = subprocess.Popen(kinds[receiver_kind] + ["receive", name, output],
                                stdout=subprocess.PIPE, encoding="utf-8")
    try:
        line = receiver.stdout.readline().rstrip("\n")
        assert line == f"listening on {name}", f"receiver starts: {line!r}"

        sender = subprocess.run(kinds[sender_kind] + ["send", name, source],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                encoding="utf-8", timeout=300)
        assert sender.returncode == 0, f"sender failed: {sender.stderr.strip()}"
        sent = sender.stdout.strip()
        prefix = f"sent {SIZE} bytes, sha256 {digest}, paused "
        assert sent.startswith(prefix), f"sender says {sent!r}"

        received = receiver.stdout.readline().rstrip("\n")
        assert receiver.wait(timeout=300) == 0, "receiver exits cleanly"
        assert received == f"received {SIZE} bytes, sha256 {digest}", f"receiver says {received!r}"
        assert file_sha256(output) == digest, "the file written is the file sent"
        return sent[len(prefix):]
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
        if os.path.exists(output):
            os.unlink(output)


def main():
    kinds = {"c": [sys.argv[1]], "python": ["/usr/bin/python3", sys.argv[2]]}
    cases = [("c", "c"), ("python", "python"), ("c", "python"), ("python", "c")]
    print(f"1..{len(cases)}")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="np-send-file-") as workdir:
        source = os.path.join(workdir, "source")
        digest = make_file(source)
        for i, (sender_kind, receiver_kind) in enumerate(cases, 1):
            what = f"{sender_kind} sender to {receiver_kind} receiver"
            try:
                pauses = run_case(kinds, sender_kind, receiver_kind, source, digest, workdir,
                                  f"send-file-{i}")
                print(f"ok {i} {what}\n# paused {pauses}")
            except (AssertionError, subprocess.TimeoutExpired) as error:
                failed += 1
                print(f"not ok {i} {what}\n# {error}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
