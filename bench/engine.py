"""Game engine with text views: sparring vs TextArena, random agents, turns per second.

Both sides render the text each mover would read (sparring: `state.view(player)`;
TextArena: `env.get_observation()` through its default LLM observation wrapper)
and pick a uniformly random legal move. Measured side by side in one process,
alternating, and the median of the rounds is reported.

    python bench/engine.py            # needs `pip install textarena` (./dev installs it)
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import textarena as ta

from sparring.games.registry import make_game


def sparring_turns(game_id: str, seconds: float, seed: int) -> float:
    game, rng = make_game(game_id), random.Random(seed)
    turns, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        state = game.new_initial_state(rng)
        while not state.is_terminal():
            player = state.current_player()
            state.view(player)
            state.apply(rng.choice(state.legal_actions()))
            turns += 1
    return turns / (time.perf_counter() - start)


def _textarena_legal(env, env_id: str) -> list[str]:
    core = env.unwrapped if hasattr(env, "unwrapped") else env
    while hasattr(core, "env"):
        core = core.env
    game_state = core.state.game_state
    if env_id.startswith("TicTacToe"):
        return [f"[{r * 3 + c}]" for r in range(3) for c in range(3) if game_state["board"][r][c] == ""]
    return [f"[{k}]" for k in game_state["current_legal_action_tree"].keys()]


def textarena_turns(env_id: str, seconds: float, seed: int) -> float:
    rng = random.Random(seed)
    turns, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env = ta.make(env_id)
        env.reset(num_players=2, seed=rng.getrandbits(31))
        done = False
        while not done:
            _player, _observation = env.get_observation()
            done, _info = env.step(action=rng.choice(_textarena_legal(env, env_id)))
            turns += 1
        env.close()
    return turns / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements per side")
    args = parser.parse_args()
    print(f"{'game':<12} {'sparring turns/s':>17} {'TextArena turns/s':>18} {'ratio':>7}")
    for ours, theirs in (("tictactoe", "TicTacToe-v0"), ("kuhn_poker", "KuhnPoker-v0")):
        a, b = [], []
        for r in range(args.rounds):
            a.append(sparring_turns(ours, args.seconds, seed=r))
            b.append(textarena_turns(theirs, args.seconds, seed=r))
        mine, other = statistics.median(a), statistics.median(b)
        print(f"{ours:<12} {mine:>17,.0f} {other:>18,.0f} {mine / other:>6.1f}x")


if __name__ == "__main__":
    main()
