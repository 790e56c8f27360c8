#!/usr/bin/env python3
# Np across a sandbox's wall, the way Flatpak builds one, made with bwrap
# (bubblewrap): the sandbox has a runtime directory of its own, with only
# the host's np directory bound in (what --filesystem=xdg-run/np grants).
# A server in a pid namespace made with unshare serves the host too.
# Prints TAP; skips what bwrap or unshare cannot do here, saying why.
#
# Usage: test-sandbox.py NP-PIPE BUILD-ROOT
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback

NP_PIPE = sys.argv[1]
BUILD_ROOT = os.path.realpath(sys.argv[2])
RUNTIME_DIR = tempfile.mkdtemp(prefix="np-sandbox-test-")
HOST_NP_DIR = os.path.join(RUNTIME_DIR, "np")
# Where Flatpak puts a sandbox's own runtime directory.
SANDBOX_RUNTIME_DIR = f"/run/user/{os.getuid()}"
os.environ["XDG_RUNTIME_DIR"] = RUNTIME_DIR
os.environ["LC_ALL"] = "C.UTF-8"

tests = []


def test(func):
    tests.append(func)
    return func


def sandbox(*options):
    """bwrap's arguments for a sandbox: the host's files read-only, a
    private /run and /tmp (so the host's runtime directory is out of
    sight), the build tree read-only, and of the runtime directory only
    np, where Flatpak binds it."""
    return ["bwrap", "--die-with-parent",
            "--ro-bind", "/", "/",
            "--dev", "/dev",
            *options,
            "--proc", "/proc",
            "--tmpfs", "/run",
            "--tmpfs", "/tmp",
            "--tmpfs", RUNTIME_DIR,
            "--ro-bind", BUILD_ROOT, BUILD_ROOT,
            "--bind", HOST_NP_DIR, SANDBOX_RUNTIME_DIR + "/np",
            "--setenv", "XDG_RUNTIME_DIR", SANDBOX_RUNTIME_DIR,
            "--"]


def run(*args, timeout=120):
    return subprocess.run(list(args), capture_output=True, timeout=timeout)


class Listener:
    """np-pipe listen --echo, maybe inside a sandbox, read line by line
    (blocking reads, no sleeping)."""

    def __init__(self, name, prefix=()):
        self.process = subprocess.Popen([*prefix, NP_PIPE, "listen", "--echo", name],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = self.line()
        assert first.startswith(f"Listening as pipe “{name}” on "), first
        self.path = first.split(" on ", 1)[1]

    def line(self):
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=120)
            raise AssertionError(f"listen ended its output: {self.process.stderr.read().decode()}")
        return line.decode().rstrip("\n")

    def np_pipe_pid(self):
        """The pid of np-pipe: the process itself, or under bwrap, which
        passes on no signal, its descendant."""
        parents = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except (OSError, ValueError):
                continue
            # The command name is in parentheses and may hold spaces.
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            parents[int(entry)] = (ppid, comm)
        found = [self.process.pid]
        for pid in sorted(parents):
            ancestor = pid
            while ancestor in parents and ancestor != self.process.pid:
                ancestor = parents[ancestor][0]
            if ancestor == self.process.pid and parents[pid][1] == "np-pipe":
                found.append(pid)
        return found[-1]

    def stop(self):
        try:
            os.kill(self.np_pipe_pid(), signal.SIGINT)
            status = self.process.wait(timeout=120)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        assert status == 0, f"listen exited with {status}: {self.process.stderr.read().decode()}"


class Skip(Exception):
    pass


@test
def sandboxed_client_reaches_host_server_by_name():
    require_bwrap()
    listener = Listener("host-server")
    try:
        assert listener.path == os.path.join(HOST_NP_DIR, "host-server"), listener.path
        # The client sees nothing of the host's runtime directory but np.
        result = run(*sandbox(), "sh", "-c",
                     f'test ! -e "{listener.path}" && '
                     f'test "$XDG_RUNTIME_DIR" = "{SANDBOX_RUNTIME_DIR}" && '
                     f'exec "{NP_PIPE}" send --wait 1 host-server "from the sandbox"')
        assert result.returncode == 0, result
        assert result.stdout.decode().splitlines() == ["reply: from the sandbox"], result.stdout

        m = re.fullmatch(r"client 1 connected \(pid (-?\d+), uid (\d+)\)", listener.line())
        assert m, "connected"
        # The host sees the sandbox's processes: the pid is known.
        assert int(m[1]) > 0, m[0]
        assert int(m[2]) == os.getuid(), m[0]
        assert listener.line() == "client 1: from the sandbox"
    finally:
        listener.stop()


@test
def server_in_pid_namespace_serves_host_client():
    require_bwrap()
    serve_host_client_from_pid_namespace("sandboxed-server", sandbox("--unshare-pid"),
                                         f"{SANDBOX_RUNTIME_DIR}/np/sandboxed-server")


@test
def server_in_pid_namespace_without_bwrap():
    # The same through util-linux's unshare, no sandbox around: the pid
    # namespace alone is what hides the client's pid.
    serve_host_client_from_pid_namespace("unshared-server", require_unshare(),
                                         os.path.join(HOST_NP_DIR, "unshared-server"))


def serve_host_client_from_pid_namespace(name, prefix, path):
    listener = Listener(name, prefix)
    try:
        assert listener.path == path, listener.path
        socket_path = os.path.join(HOST_NP_DIR, name)
        assert os.path.exists(socket_path), f"{socket_path} is not on the host"

        result = run(NP_PIPE, "send", "--wait", "1", name, "from the host")
        assert result.returncode == 0, result
        assert result.stdout.decode().splitlines() == ["reply: from the host"], result.stdout

        # The server cannot see the host client's pid: it reads as
        # unknown, and its uid is still right.
        assert listener.line() == f"client 1 connected (pid -1, uid {os.getuid()})"
        assert listener.line() == "client 1: from the host"
        assert listener.line() == "client 1 disconnected"

        result = run(NP_PIPE, "request", name, "ping")
        assert result.returncode == 0, result
        assert result.stdout.decode().splitlines() == ["reply: ping"], result.stdout
        assert listener.line() == f"client 2 connected (pid -1, uid {os.getuid()})"
    finally:
        listener.stop()
    assert not os.path.exists(socket_path), \
        "the socket file was removed"


def require_bwrap():
    """Skips the test when bwrap cannot make a sandbox here."""
    if shutil.which("bwrap") is None:
        raise Skip("bwrap (bubblewrap) is not installed")
    result = run("bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid",
                 "--proc", "/proc", "--", "true", timeout=60)
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip() or f"status {result.returncode}"
        raise Skip(f"bwrap cannot make a sandbox here: {reason}")


def require_unshare():
    """unshare's arguments for a pid namespace, in a user namespace that
    keeps the uid when not root; skips the test when none can be made."""
    if shutil.which("unshare") is None:
        raise Skip("unshare (util-linux) is not installed")
    prefix = ["unshare", "--pid", "--fork"]
    if os.getuid() != 0:
        prefix[1:1] = ["--user", "--map-current-user"]
    result = run(*prefix, "true", timeout=60)
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip() or f"status {result.returncode}"
        raise Skip(f"unshare cannot make a pid namespace here: {reason}")
    return [*prefix, "--"]


def main():
    os.makedirs(HOST_NP_DIR, mode=0o700, exist_ok=True)
    print(f"1..{len(tests)}")
    failed = 0
    for i, func in enumerate(tests, 1):
        try:
            func()
            print(f"ok {i} {func.__name__}")
        except Skip as skip:
            print(f"ok {i} {func.__name__} # SKIP {skip}")
        except Exception:
            failed += 1
            print(f"not ok {i} {func.__name__}")
            for line in traceback.format_exc().splitlines():
                print(f"# {line}")
    shutil.rmtree(RUNTIME_DIR, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
