"""A person plays an agent in the browser: the match runs through the arena like
any other (`play_matches`, the same rules for invalid answers) and is stored as a
play run of its own under the runs directory, where the dashboard lists it and
replays it.

Each match is a `PlaySession`: a thread plays it, and the person's seat is a
`BrowserSeat` agent whose `act` waits for the answer the page posts. The page
offers only legal moves, so a person never gives an invalid answer; the
opponent's answers go through the rule as usual.
"""

from __future__ import annotations

import dataclasses
import queue
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sparring.agents.base import Decision
from sparring.agents.registry import AGENT_KINDS
from sparring.arena.match import InvalidMoveRule, PlannedMatch, match_seed, play_matches
from sparring.dashboard.boards import Board, draw
from sparring.dashboard.runs import RunsRoot
from sparring.errors import SparringError
from sparring.games.registry import all_specs, make_game
from sparring.records import Choice, MatchRecord
from sparring.refs import parse_ref

HUMAN = "human"  # the person's seat, named as `sparring play --players human` names it
ANSWER_WAIT_S = 30 * 60  # a match nobody answers for this long is given up (its thread ends)
LIVE_SESSIONS = 4  # matches in progress at once: each opponent may hold a loaded model
REPLY_WAIT_S = 3.0  # after a move, how long the answer waits for the opponent's reply
PLAY_DIR = "play"  # under the runs directory: where the browser's matches are stored


class Abandoned(SparringError):
    """Nobody answered in time, or the session was stopped."""


@dataclass(frozen=True)
class Question:
    """What the person is asked: their view and the legal moves, by name."""

    number: int  # counts the person's decisions, so a stale form is recognised
    player: int
    view: str
    moves: tuple[tuple[int, str], ...]  # (action, name)
    board: Board | None  # drawn only where every player sees everything (a spectator's board shows all)


@dataclass(frozen=True)
class PlaySettings:
    game: str  # game reference
    game_id: str  # its id, which names the run directory
    opponent: str  # agent reference, or the absolute path of a checkpoint under the runs directory
    opponent_name: str  # how the store names the opponent: its reference, or its path under the runs directory
    seat: int  # the person's seat
    seed: int


class PlaySession:
    """One match between a person and an agent, played in a thread of its own."""

    def __init__(self, settings: PlaySettings, run_dir: Path, run_name: str):
        self.id = secrets.token_urlsafe(12)
        self.settings = settings
        self.run_dir, self.run_name = run_dir, run_name
        self.status = "starting"  # starting, your move, waiting, over, failed
        self.error: str | None = None
        self.question: Question | None = None
        self.record: MatchRecord | None = None
        self.changed = threading.Condition()
        self._answers: queue.Queue[int | None] = queue.Queue()
        self._asked = 0
        self.thread = threading.Thread(target=self._run, name=f"play-{self.id}", daemon=True)

    @property
    def seats(self) -> tuple[str, ...]:
        names = [self.settings.opponent_name] * 2
        names[self.settings.seat] = HUMAN
        return tuple(names)

    def start(self) -> None:
        self.thread.start()

    def ask(self, decision: Decision) -> int:
        """Put the decision to the person and wait for their move (`answer`)."""
        state = decision.state
        self._asked += 1
        question = Question(self._asked, decision.player, state.view(decision.player),
                            tuple((a, state.action_name(a)) for a in state.legal_actions()),
                            draw(state, moved=True) if state.spec.perfect_information else None)
        self._set("your move", question=question)
        try:
            action = self._answers.get(timeout=ANSWER_WAIT_S)
        except queue.Empty:
            raise Abandoned(f"no move for {ANSWER_WAIT_S // 60} minutes: the match was given up, "
                            "and is not stored") from None
        if action is None:
            raise Abandoned("the dashboard stopped before the match ended: it is not stored")
        self._set("waiting", question=None)
        return action

    def answer(self, number: int, action: int) -> None:
        """The person's move at question `number`; refused unless it is a legal move
        of the question now open."""
        with self.changed:
            question = self.question
            if self.status != "your move" or question is None or question.number != number:
                raise SparringError("that move answers a question no longer open: the page was out of date, "
                                    "so nothing was played; here is the match as it stands")
            if action not in dict(question.moves):
                raise SparringError(f"action {action} is not a legal move here: pick one of the buttons")
            self.status = "waiting"
            self.changed.notify_all()
        self._answers.put(action)

    def stop(self) -> None:
        self._answers.put(None)

    def wait_for_change(self, seen: str, timeout: float) -> None:
        """Block until the status is other than `seen` (or `timeout` passes): a move's
        answer shows the opponent's reply when it comes quickly."""
        with self.changed:
            self.changed.wait_for(lambda: self.status != seen, timeout)

    def _set(self, status: str, **fields) -> None:
        with self.changed:
            self.status = status
            for key, value in fields.items():
                setattr(self, key, value)
            self.changed.notify_all()

    def _run(self) -> None:
        from sparring.agents.registry import AgentFactory
        from sparring.store import RunStore

        settings, factory, store = self.settings, None, None
        try:
            game = make_game(settings.game)
            factory = AgentFactory(game)
            opponent = factory.make(settings.opponent)
            opponent.name = settings.opponent_name
            seats = [opponent, opponent]
            seats[settings.seat] = BrowserSeat(self)
            store = RunStore(self.run_dir, create=True)
            rule = InvalidMoveRule()
            store.start({"game": settings.game, "players": list(self.seats), "games": 1, "seed": settings.seed,
                         "out": str(self.run_dir), "concurrency": 1, "invalid": dataclasses.asdict(rule)})
            planned = PlannedMatch(0, game, tuple(seats), match_seed(settings.seed, 0))
            ended = play_matches([planned], rule, on_match_end=store.write_match)
            if not ended:
                raise SparringError(f"{settings.opponent_name} gave no answer (its backend failed): the match is void")
            self._set("over", record=ended[0].record)
        except Abandoned as exc:
            self._set("failed", error=str(exc))
        except Exception as exc:  # whatever the opponent raises, the page says it and the server goes on
            self._set("failed", error=f"the match stopped: {exc}" if isinstance(exc, SparringError)
                      else f"the match stopped ({type(exc).__name__}: {exc})")
        finally:
            if factory is not None:
                factory.close()
            if store is not None:
                store.close()


class BrowserSeat:
    """The person's seat as an agent: each decision goes to the page and waits."""

    name = HUMAN

    def __init__(self, session: PlaySession):
        self.session = session

    def act(self, decisions: list[Decision]) -> list[Choice]:
        return [Choice(action=self.session.ask(d)) for d in decisions]

    def close(self) -> None:
        pass


PLAYABLE_FILES = ("agent.json", "members.json", "playbook.json", "policy.json")  # agents.registry's markers


def playable_under(run_dir: Path, run_name: str) -> list[str]:
    """The agents a run holds (checkpoints, a population's nash, an evolution's
    versions, a mirror's policy), as paths under the runs directory: folders
    with a file the agent registry plays, one or two levels below the run."""
    found = {folder.parent for marker in PLAYABLE_FILES
             for folder in (*run_dir.glob(f"*/{marker}"), *run_dir.glob(f"*/*/{marker}"))}
    return sorted(f"{run_name}/{folder.relative_to(run_dir).as_posix()}" for folder in found
                  if not folder.is_symlink())


def read_settings(form: dict[str, str], root: RunsRoot) -> PlaySettings:
    """The play form's fields as settings, or a SparringError that says what to fix.
    The opponent is an agent reference, or an agent's path under the runs directory
    (never outside it); building it (loading a model) happens in the match's thread."""
    game_ref = form.get("game", "").strip()
    game = make_game(game_ref)
    if game.spec.players != 2:
        raise SparringError(f"{game.spec.name} has {game.spec.players} players: the play page seats one person "
                            "against one agent, so give a two-player game")
    seat = form.get("seat", "1").strip()
    if seat not in ("1", "2"):
        raise SparringError(f"seat {seat!r}: choose 1 (you move first) or 2")
    seed_text = form.get("seed", "").strip()
    if seed_text and not seed_text.isdigit():
        raise SparringError(f"seed {seed_text!r} is not a whole number: give one, or leave it empty for a random one")
    opponent = form.get("opponent", "").strip()
    path = root.base / opponent
    if opponent and "(" not in opponent and ("/" in opponent or path.exists()):
        resolved = path.resolve()
        if not resolved.exists() or not resolved.is_relative_to(root.scope):
            raise SparringError(f"no agent {opponent!r} under {root.scope}: give an agent such as random, or a "
                                "checkpoint from the list (a path under the runs directory)")
        return PlaySettings(game_ref, game.spec.id, str(resolved), opponent, int(seat) - 1, _seed(seed_text))
    kind, _ = parse_ref(opponent)
    if kind == HUMAN:
        raise SparringError("you are the human here: choose an agent to play against, such as random")
    if kind not in AGENT_KINDS and not kind.startswith("always_"):
        raise SparringError(f"unknown agent {kind!r}: give one of {', '.join(k for k in AGENT_KINDS if k != HUMAN)}, "
                            "or a checkpoint from the list")
    return PlaySettings(game_ref, game.spec.id, opponent, opponent, int(seat) - 1, _seed(seed_text))


def _seed(text: str) -> int:
    return int(text) if text else secrets.randbits(31)


class PlayDesk:
    """The sessions of one dashboard: starts them (a run directory each, under the
    runs directory's `play/`) and finds them again by id."""

    def __init__(self, base: Path):
        self.folder = base / PLAY_DIR
        self.base = base  # run names are paths under it
        self._sessions: dict[str, PlaySession] = {}
        self._lock = threading.Lock()

    def start(self, settings: PlaySettings) -> PlaySession:
        with self._lock:
            live = [s for s in self._sessions.values() if s.thread.is_alive()]
            if len(live) >= LIVE_SESSIONS:
                raise SparringError(f"{len(live)} matches are in progress already: finish or leave one "
                                    f"(each stops after {ANSWER_WAIT_S // 60} minutes without a move)")
            run_dir = self._new_run_dir(settings)
            session = PlaySession(settings, run_dir, run_dir.relative_to(self.base).as_posix())
            self._sessions[session.id] = session
        session.start()
        return session

    def get(self, session_id: str) -> PlaySession | None:
        return self._sessions.get(session_id)

    def close(self) -> None:
        for session in self._sessions.values():
            session.stop()

    def _new_run_dir(self, settings: PlaySettings) -> Path:
        from sparring.store import new_run_dir

        try:
            return new_run_dir(self.folder, settings.game_id)
        except OSError as exc:
            raise SparringError(f"cannot make a run directory under {self.folder} ({exc.strerror or exc}): "
                                "the runs directory must be writable to store a match") from None


class PlayPages:
    """The play pages: the form (/play), a match (/play/<id>) and its moves.

    Forms post plain URL-encoded fields (no script needed); a page waiting on the
    opponent refreshes itself. A post from another site's page is refused
    (its Origin names another host), so no page elsewhere can start a match or move."""

    def __init__(self, root: RunsRoot, page, enabled: str | None):
        self.root, self.page = root, page
        self.disabled = enabled  # None: play is on; else why it is off
        self.desk = PlayDesk(root.base)

    def form(self, request: Request, error: str | None = None, values: dict[str, str] | None = None,
             status: int = 200) -> HTMLResponse:
        games = [f"{spec.id}" for spec in all_specs() if spec.players == 2]
        agents = [k for k in AGENT_KINDS if k not in (HUMAN, "policy", "mixture", "always_<move>")]
        checkpoints = [a for name in self.root.find() for a in playable_under(self.root.base / name, name)]
        return self.page("play.html", status=status, games=games, agents=agents, checkpoints=checkpoints,
                         values=values or dict(request.query_params), error=error, disabled=self.disabled)

    async def start(self, request: Request) -> Response:
        form = await self._posted(request)
        try:
            session = self.desk.start(read_settings(form, self.root))
        except SparringError as exc:
            return self.form(request, error=str(exc), values=form, status=400)
        return RedirectResponse(f"/play/{session.id}", status_code=303)

    def match(self, request: Request) -> HTMLResponse:
        session = self._session(request)
        return self.page("play_match.html", session=session, settings=session.settings, seats=session.seats,
                         error=request.query_params.get("error"))

    async def move(self, request: Request) -> Response:
        session = self._session(request)
        form = await self._posted(request)
        try:
            session.answer(int(form.get("question", "-1")), int(form.get("action", "-1")))
        except (SparringError, ValueError) as exc:
            message = str(exc) if isinstance(exc, SparringError) else "the move was not a number: pick a button"
            return RedirectResponse(f"/play/{session.id}?{urlencode({'error': message})}", status_code=303)
        # a quick opponent's reply shows on the next page without a refresh
        await run_in_threadpool(session.wait_for_change, "waiting", REPLY_WAIT_S)
        return RedirectResponse(f"/play/{session.id}", status_code=303)

    def _session(self, request: Request) -> PlaySession:
        session = self.desk.get(request.path_params["session"])
        if session is None:
            raise HTTPException(404, "no match in progress here: the dashboard was restarted or the link is "
                                     "wrong. Start one from the play page")
        return session

    async def _posted(self, request: Request) -> dict[str, str]:
        if self.disabled:
            raise HTTPException(403, self.disabled)
        # Browsers say where a post comes from in Sec-Fetch-Site; older ones in Origin
        # ("null" under this site's no-referrer policy).
        site, origin = request.headers.get("sec-fetch-site"), request.headers.get("origin")
        if (site is not None and site not in ("same-origin", "none")) or (
                site is None and origin not in (None, "null") and urlsplit(origin).netloc != request.headers.get("host")):
            raise HTTPException(403, "a page from another site tried to play here: refused")
        if len(body := await request.body()) > 10_000:
            raise HTTPException(413, "the form is too large")
        return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
