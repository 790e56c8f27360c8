#!/usr/bin/env python3
# Checks that libnp exports exactly its public API, that every exported
# function is in the GIR, and that the API names other code relies on exist.
#
# Usage: check-exports.py LIBRARY GIR

import subprocess
import sys
import xml.etree.ElementTree as ET

FIXED_API = """
np_pipe_server_new np_pipe_server_start np_pipe_server_stop np_pipe_server_is_running
np_pipe_server_get_name np_pipe_server_get_path np_pipe_server_get_n_connections
np_pipe_server_get_connections np_pipe_server_broadcast
np_pipe_connection_get_id np_pipe_connection_get_peer_pid np_pipe_connection_get_peer_uid
np_pipe_connection_send np_pipe_connection_close np_pipe_connection_get_connected
np_pipe_client_new np_pipe_client_connect_sync np_pipe_client_connect_async
np_pipe_client_connect_finish np_pipe_client_send np_pipe_client_send_async
np_pipe_client_send_finish np_pipe_client_flush_sync np_pipe_client_flush_async
np_pipe_client_flush_finish np_pipe_client_close
np_pipe_error_quark np_pipe_error_get_type
""".split()

FIXED_SIGNALS = {
    "PipeServer": {"client-connected", "message-received", "client-disconnected"},
    "PipeClient": {"message-received", "disconnected"},
}

FIXED_PROPERTIES = {
    "PipeServer": {"name", "path", "running", "n-connections", "max-message-size"},
    "PipeClient": {"name", "path", "connected", "max-message-size"},
}

FIXED_ERRORS = {"not-found", "address-in-use", "invalid-name", "message-too-large",
                "protocol", "closed", "permission-denied"}

NS = {
    "core": "http://www.gtk.org/introspection/core/1.0",
    "c": "http://www.gtk.org/introspection/c/1.0",
    "glib": "http://www.gtk.org/introspection/glib/1.0",
}

def main():
    library, gir = sys.argv[1], sys.argv[2]
    failures = []

    out = subprocess.run(["nm", "-D", "--defined-only", library],
                         check=True, capture_output=True, text=True).stdout
    exported = {line.split()[-1] for line in out.splitlines()
                if line.split()[1:2] in (["T"], ["D"], ["B"], ["R"])}

    stray = sorted(s for s in exported if not s.startswith("np_"))
    if stray:
        failures.append(f"exported symbols outside the np_ API: {stray}")

    root = ET.parse(gir).getroot()
    in_gir = set()
    for tag in ("function", "method", "constructor"):
        for node in root.iter(f"{{{NS['core']}}}{tag}"):
            in_gir.add(node.get(f"{{{NS['c']}}}identifier"))
    for node in root.iter():
        get_type = node.get(f"{{{NS['glib']}}}get-type")
        if get_type:
            in_gir.add(get_type)

    missing_from_gir = sorted(s for s in exported if s.startswith("np_") and s not in in_gir)
    if missing_from_gir:
        failures.append(f"exported but not in the GIR: {missing_from_gir}")

    for name in FIXED_API:
        if name not in exported:
            failures.append(f"{name} is not exported")
        if name not in in_gir:
            failures.append(f"{name} is not in the GIR")

    classes = {c.get("name"): c for c in root.iter(f"{{{NS['core']}}}class")}
    for cls, names in FIXED_SIGNALS.items():
        have = {s.get("name") for s in classes[cls].iter(f"{{{NS['glib']}}}signal")}
        for name in sorted(names - have):
            failures.append(f"signal {cls}::{name} is not in the GIR")
    for cls, names in FIXED_PROPERTIES.items():
        have = {p.get("name") for p in classes[cls].iter(f"{{{NS['core']}}}property")}
        for name in sorted(names - have):
            failures.append(f"property {cls}:{name} is not in the GIR")

    domain = [e for e in root.iter(f"{{{NS['core']}}}enumeration")
              if e.get(f"{{{NS['glib']}}}error-domain") == "np-pipe-error-quark"]
    if not domain:
        failures.append("NpPipeError is not an error domain in the GIR")
    else:
        have = {m.get(f"{{{NS['glib']}}}nick") for m in domain[0].iter(f"{{{NS['core']}}}member")}
        for name in sorted(FIXED_ERRORS - have):
            failures.append(f"error code {name} is not in the GIR")

    print("1..1")
    if failures:
        for f in failures:
            print(f"# {f}")
        print("not ok 1 exported symbols and GIR")
        return 1
    print(f"ok 1 exported symbols and GIR ({len(exported)} symbols)")
    return 0

if __name__ == "__main__":
    sys.exit(main())
