"""Why the probe stopped: facts read from every node (facts, iptables), a table of checks by place
on the path (rules -> at_source, tunnel, forward, at_destination), fixes checked against the
nodes' state (fixes), and the loop that applies them (fixloop); run.py ties them together."""
