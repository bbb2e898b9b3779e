"""How wgtrace reaches a node: one interface (base.Node: run, start, read state, capture, send),
implemented for a node of a lab (netns; nsinit, nsexec, packetsock) and a host over SSH (ssh*). Callers never know which."""
