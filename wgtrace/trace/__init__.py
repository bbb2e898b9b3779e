"""Follow one probe: build it (probe), capture it on every interface (capture), decode frames
(packets), and assemble the hops into a path with a story (path); run.py ties them together."""
