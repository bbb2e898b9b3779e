"""``wgtrace serve``: one web page for a class, the labs of this server live.

Division of labour (data flows down):
  labs.py    the only module that calls the rest of wgtrace: running labs, their state and model,
             pictures, progress records, the last check --all, diagnose and check --all
  view.py    pure: readings and results into the JSON a page gets; keys redacted
  live.py    the poller (every lab each second, from files only) and the hub of events
  probes.py  probes started from the page (--allow-probes): two at a time, one per lab
  app.py     HTTP routes and the event stream (the standard library's ThreadingHTTPServer)
  page.py    the page's template, script and style (static/, package data), texts inlined
  run.py     bind, serve until Ctrl-C, leave nothing running
"""
