"""A lab on this machine: check the machine (preflight), build it (build, services, stages),
open it (open), read its picture (status), break it (inject), export it, remove it (teardown).
runtime.py names everything a lab makes and records it before it is made."""
