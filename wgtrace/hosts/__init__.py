"""Real machines instead of a lab: a hosts file, reached over SSH, seen as a ``Network``.

file.py reads and checks the hosts file; open.py connects and builds the ``Network`` that trace,
diagnose and status receive; discover.py turns the hosts' state into a lab model (and a lab file).
"""
