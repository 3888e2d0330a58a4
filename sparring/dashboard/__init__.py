"""The dashboard: a local web app over run stores, read-only while runs write.

`runs.py` finds the runs under a root and keeps URLs inside it; `summary.py` says
what the runs page shows of each; `charts.py` turns a training run's steps,
evaluations and exploitability into Plotly figures; `replay.py` turns a match's
turns into the steps of its replay; `evolution.py` a playbook's history;
`play.py` lets a person play an agent, storing the match as a run of its own;
`app.py` serves the pages (Starlette; `templating.py`: Jinja templates with
autoescape, in templates/, and the scripts and styles in static/) and `server.py`
binds the address and runs uvicorn. The web packages are the
`dashboard` extra: nothing else in sparring imports this package.
"""
