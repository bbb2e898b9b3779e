"""The services a lab file asks for on a node: a real sshd where installed, else a TCP listener."""
from __future__ import annotations

import shlex
import subprocess
import sys

from ..nodes.netns import NetnsNode
from ..model.commands import SSH_HOSTKEY, sshd_argv
from ..model.lab import Lab
from .preflight import which

TCP_LISTENER = (
    "import socket,sys\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(16)\n"
    "while True:\n"
    "    c,_=s.accept(); c.sendall(b'SSH-2.0-wgtrace-listener\\r\\n'); c.close()\n")


def start_services(lab: Lab, nodes: dict[str, NetnsNode]) -> list:
    """Start each node's services; returns the jobs still starting (wait for them later)."""
    jobs = []
    sshd = which("sshd")
    for name, n in lab.nodes.items():
        for svc in n.services:
            h = nodes[name]
            if svc.kind == "ssh" and sshd:
                (h.run_dir / "sshd").mkdir(mode=0o755, exist_ok=True)
                args = shlex.join(sshd_argv(svc.port, sshd))
                # a real sshd where installed (it daemonizes by itself); if it cannot start, a plain
                # listener answers on the port, sent to the background
                script = (f"ssh-keygen -q -t ed25519 -N '' -f {SSH_HOSTKEY} && {args} || "
                          f"{{ {shlex.quote(sys.executable)} -c {shlex.quote(TCP_LISTENER)} {svc.port} "
                          f"</dev/null >/dev/null 2>&1 & }}")
                jobs.append(h.start(["sh", "-c", script]))
            else:
                h.popen([sys.executable, "-c", TCP_LISTENER, str(svc.port)], stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return jobs
