"""The dashboard's web app: server-rendered pages and the JSON they poll.

    /                                   every run under the root
    /run/<run>                          one run: its curves (live), evolution, matches
    /run/<run>/match/<i>#turn-<k>       a match replayed step by step (?turn=k works too)
    /compare?run=<a>&run=<b>            two or more runs' curves on one chart each (live)
    /play, /play/<id>                   a person plays an agent; the match is stored as a run
    /api/runs, /api/run/<run>/training, /api/run/<run>/match/<i>    the same as JSON

Starlette rather than FastAPI: the pages are rendered on the server and the JSON is
read-only, so there is no request body to validate and no API schema to publish;
FastAPI would add pydantic models and an OpenAPI page (which loads its viewer from
a CDN) to the same Starlette routing. Every store is opened read-only, one
connection per request, so a page shows what a running run has written so far.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sparring.dashboard.charts import training_figures
from sparring.dashboard.compare import (
    COLORS,
    NotComparable,
    compare_figures,
    picked_runs,
    read_curves,
    stamp_tag,
)
from sparring.dashboard.evolution import read_evolution
from sparring.dashboard.matchlist import SHOWS, MatchFilter, match_page
from sparring.dashboard.play import PlayPages
from sparring.dashboard.replay import build_replay
from sparring.dashboard.runs import RunsRoot, StoreStamp, UnknownRun
from sparring.dashboard.standings import read_metagame, read_solves, read_standings
from sparring.dashboard.summary import KeptUntilChanged, RunSummary, Summaries, reading
from sparring.dashboard.templating import STATIC, environment
from sparring.errors import SparringError
from sparring.store import KIND_KEYS

CONFIG_KEYS = {kind: key for key, kind in KIND_KEYS.items()}  # kind -> the meta key of its settings
TRAINING_KINDS = {"train", "mirror", "population"}
# The page's own scripts and styles only: no inline script, no other origin. Plotly
# adds <style> elements as it draws, hence the inline styles.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                 b"img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def plotly_js() -> Path:
    """plotly.js as the plotly package ships it (`plotly.offline.get_plotlyjs` reads
    the same file): served from here, never from a CDN."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class Dashboard:
    """The pages over one root; `summaries` keeps what the runs page read."""

    def __init__(self, root: RunsRoot):
        self.root = root
        self.summaries = Summaries()
        self.standings = KeptUntilChanged()  # ratings take seconds over thousands of matches
        self.templates = environment()

    def page(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return HTMLResponse(self.templates.get_template(template).render(**values), status_code=status)

    def run_dir(self, request: Request) -> Path:
        try:
            return self.root.resolve(request.path_params["run"].rstrip("/"))
        except UnknownRun:
            raise HTTPException(404, f"no run named {request.path_params['run']!r} under {self.root.scope}") from None

    def summarize_all(self) -> list[RunSummary]:
        return [self.summaries.of(name, self.root.base / name) for name in self.root.find()]

    # ---- pages -----------------------------------------------------------------------

    def runs_page(self, request: Request) -> HTMLResponse:
        return self.page("runs.html", runs=self.summarize_all(), root=self.root.scope)

    def run_page(self, request: Request) -> HTMLResponse:
        run_dir = self.run_dir(request)
        name = self.root.name_of(run_dir)
        summary = self.summaries.of(name, run_dir)
        values: dict[str, Any] = {"run": summary, "name": name, "error": summary.error}
        if summary.error is None:
            try:
                with reading(run_dir) as store:
                    values.update(self._run_sections(store, summary, request))
            except SparringError as exc:  # a damaged store, or one of another schema: say so on the page
                values["error"] = str(exc)
        return self.page("run.html", status=200, **values)

    def _run_sections(self, store, summary: RunSummary, request: Request) -> dict[str, Any]:
        kind = summary.kind
        matches = match_page(store, MatchFilter.of(request.query_params), _int(request.query_params.get("page"), 1))
        members = store.members()
        training = kind in TRAINING_KINDS or bool(store.train_steps() or store.train_evals() or store.exploitability())
        return {
            "config": store.get_meta(CONFIG_KEYS.get(kind, "config")) if kind else None,
            "created": store.get_meta("created_at"),
            "matches": matches, "shows": SHOWS,
            "training": training,
            "evolution": read_evolution(store) if kind == "evolve" else None,
            "standings": self.standings.get(store.dir, StoreStamp.of(store.dir), lambda: read_standings(store.matches()))
            if matches.stored else None,
            "solves": read_solves(members, store.population_iterations()),
            "metagame": read_metagame(members, store.metagame(), store.metagame_half_widths()),
        }

    def replay_page(self, request: Request) -> HTMLResponse:
        run_dir = self.run_dir(request)
        name, index = self.root.name_of(run_dir), request.path_params["index"]
        try:
            with reading(run_dir) as store:
                match = store.match(index)
                if match is None:
                    raise HTTPException(404, _no_match(index, store.finished_indices(), name))
                turns, signals = store.turns(index), store.turn_signals(index)
                indices = sorted(store.finished_indices())
        except HTTPException:
            raise
        except SparringError as exc:  # a damaged store, or one of another schema: say so on the page
            return self.page("error.html", status=500, title=name, message=str(exc))
        position = indices.index(index)
        replay = build_replay(match, turns, signals)
        selected = min(max(1, _int(request.query_params.get("turn"), 1)), len(replay.steps) + 1)
        return self.page("replay.html", name=name, replay=replay, selected=selected,
                         previous=indices[position - 1] if position else None,
                         next=indices[position + 1] if position + 1 < len(indices) else None)

    def compare_page(self, request: Request) -> HTMLResponse:
        """Two or more runs' curves, one chart per metric (compare.js polls compare_json)."""
        try:
            run_dirs = self.compared_dirs(request)
        except NotComparable as exc:
            return self.page("compare.html", problem=str(exc), runs=[], query=[])  # what to do, not a failure
        names = [self.root.name_of(d) for d in run_dirs]
        runs = [(self.summaries.of(n, d), read_curves(n, d), color) for n, d, color in zip(names, run_dirs, COLORS)]
        return self.page("compare.html", problem=None, runs=runs, query=[("run", n) for n in names])

    def compared_dirs(self, request: Request) -> list[Path]:
        """The runs that ?run=NAME&run=NAME... names; a name that names none is refused as on a run's page."""
        try:
            return picked_runs(self.root, request.query_params.getlist("run"))
        except UnknownRun as exc:
            raise HTTPException(404, f"no run named {exc.args[0]!r} under {self.root.scope}") from None

    # ---- JSON -------------------------------------------------------------------------

    def runs_json(self, request: Request) -> JSONResponse:
        return JSONResponse([_summary_json(s) for s in self.summarize_all()])

    def training_json(self, request: Request) -> Response:
        """The run's charts as Plotly figures, with its status: what the run page polls.
        Unchanged since the caller's copy (its ETag): 304, nothing read."""
        run_dir = self.run_dir(request)
        stamp = StoreStamp.of(run_dir)
        summary = self.summaries.of(self.root.name_of(run_dir), run_dir)
        etag = f'"{stamp.size}-{stamp.modified}-{summary.status()}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"etag": etag})
        try:
            with reading(run_dir) as store:
                figures = training_figures(store.train_steps(), store.train_evals(), store.exploitability())
        except SparringError as exc:  # a damaged store, or one of another schema: say so
            return JSONResponse({"error": str(exc)}, status_code=500)
        body = {**_summary_json(summary), "figures": figures}
        return JSONResponse(body, headers={"etag": etag, "cache-control": "no-cache"})

    def compare_json(self, request: Request) -> Response:
        """The compared runs' charts as Plotly figures, with each run's status: what the
        compare page polls. No store changed since the caller's copy (its ETag): 304."""
        try:
            run_dirs = self.compared_dirs(request)
        except NotComparable as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        summaries = [self.summaries.of(self.root.name_of(d), d) for d in run_dirs]
        etag = stamp_tag(run_dirs, [s.status() for s in summaries])
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"etag": etag})
        runs = [read_curves(s.name, d) for s, d in zip(summaries, run_dirs)]
        body = {"runs": [{**_summary_json(s), "note": r.note, "color": c} for s, r, c in zip(summaries, runs, COLORS)],
                "figures": compare_figures(runs)}
        return JSONResponse(body, headers={"etag": etag, "cache-control": "no-cache"})

    def match_json(self, request: Request) -> JSONResponse:
        run_dir = self.run_dir(request)
        index = request.path_params["index"]
        with reading(run_dir) as store:
            match = store.match(index)
            if match is None:
                raise HTTPException(404, _no_match(index, store.finished_indices(), self.root.name_of(run_dir)))
            turns, signals = store.turns(index), store.turn_signals(index)
        replay = build_replay(match, turns, signals)
        return JSONResponse({"match": _jsonable(match), "turns": [_step_json(s) for s in replay.steps],
                             "final_views": list(replay.final_views), "note": replay.note})

    # ---- errors -----------------------------------------------------------------------

    def not_found(self, request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        title = {403: "refused", 404: "not found"}.get(exc.status_code, "error")
        return self.page("error.html", status=exc.status_code, title=title, message=exc.detail)

    def failed(self, request: Request, exc: Exception) -> Response:
        # Starlette raises the exception on after this answer, and uvicorn logs its traceback
        message = f"the dashboard failed on this page ({type(exc).__name__}); the terminal running it has the details"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=500)
        return self.page("error.html", status=500, title="error", message=message)


def create_app(root: RunsRoot, allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]"),
               play_off: str | None = None) -> Starlette:
    """The dashboard over `root`. Only requests naming one of `allowed_hosts` are
    answered (a web page elsewhere cannot reach the dashboard by pointing a name of
    its own at 127.0.0.1); ("*",) answers any. `play_off` says why the play page
    may not start matches (None: it may)."""
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    board = Dashboard(root)
    if play_off is None and root.scope != root.base:
        play_off = ("the dashboard shows one run: to play, point it at a directory of runs "
                    "(the match is stored as a run of its own there)")
    play = PlayPages(root, board.page, play_off)
    routes = [
        Route("/play", play.form, methods=["GET"]),
        Route("/play", play.start, methods=["POST"]),
        Route("/play/{session}", play.match, methods=["GET"]),
        Route("/play/{session}/move", play.move, methods=["POST"]),
        Route("/", board.runs_page),
        Route("/api/runs", board.runs_json),
        Route("/compare", board.compare_page),
        Route("/api/compare", board.compare_json),
        Route("/api/run/{run:path}/training", board.training_json),
        Route("/api/run/{run:path}/match/{index:int}", board.match_json),
        Route("/run/{run:path}/match/{index:int}", board.replay_page),
        Route("/run/{run:path}", board.run_page),
        Route("/static/plotly.min.js", lambda request: FileResponse(
            plotly_js(), media_type="text/javascript", headers={"cache-control": "max-age=86400"})),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {HTTPException: board.not_found, Exception: board.failed}
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
                  Middleware(SecurityHeaders)]
    return Starlette(routes=routes, exception_handlers=handlers, middleware=middleware)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response: a second wall behind the escaping."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _no_match(index: int, indices: set[int], name: str) -> str:
    if not indices:
        return f"no match {index} in {name}: the run has no finished match yet"
    return f"no match {index} in {name}: its matches are numbered {min(indices)} to {max(indices)}"


def _summary_json(s: RunSummary) -> dict[str, Any]:
    return {"name": s.name, "kind": s.kind, "games": list(s.games), "agents": list(s.agents), "matches": s.matches,
            "progress": s.progress, "status": s.status(), "size": s.size, "modified": s.modified, "error": s.error}


def _jsonable(value: Any) -> Any:
    """A record as JSON: dataclasses as objects, non-finite numbers as null."""
    import dataclasses

    if dataclasses.is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _step_json(step) -> dict[str, Any]:
    return {"number": step.number, "outcome": step.outcome, "feedback": step.feedback,
            "probability": step.probability, "options": _jsonable(step.options), "board": _jsonable(step.board),
            "rejected": step.rejected, "signal": None if step.signal is None else dict(
                zip(("step", "reward", "advantage"), step.signal)),
            "action": step.turn.action, **_jsonable(step.turn)}
