"""How wgtrace reaches a node: one interface (base.Node: run, start, read state, capture, send),
implemented for a namespace of a lab (netns, nsexec, packetsock, uapi, rtnl) and for a real host
over SSH (ssh, sshconn, sshstate, sshcapture). Callers never know which."""
