"""How wgtrace reaches a node: one interface (base.Node: run, start, read state, capture, send),
implemented for a node of a lab (netns; nsinit, nsexec, packetsock, uapi, rtnl), a real host over
SSH (ssh, sshconn, sshstate, sshcapture) and recorded state (recorded). Callers never know which."""
