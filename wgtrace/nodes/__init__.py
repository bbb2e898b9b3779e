"""How wgtrace reaches a node: one interface (base.Node: run, start, read state, capture, send),
implemented for a namespace of a lab (netns, nsexec, packetsock). Callers never know which."""
