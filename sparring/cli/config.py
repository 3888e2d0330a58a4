"""Typed job configs, read from flags or a YAML file and validated in one place."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sparring.arena.match import InvalidMoveRule
from sparring.errors import SparringError


@dataclass
class PlayConfig:
    game: str
    """Game reference: an id from `sparring games`, with optional parameters, e.g.
    matrix(preset=stag_hunt,rounds=5), or openspiel:NAME(params)."""
    players: list[str]
    """One agent reference per seat (seats rotate between matches)."""
    games: int = 16
    """Number of matches."""
    seed: int = 0
    """Run seed: the same seed and config give the same transcripts."""
    out: str | None = None
    """Run directory; default runs/<game>-<time>. An existing run with the same
    config is continued."""
    concurrency: int = 32
    """Matches played at once in lockstep (the batch size a model sees)."""
    invalid: InvalidMoveRule = field(default_factory=InvalidMoveRule)
    """What an invalid answer costs: retries, then forfeit or a random move. The
    flags' names are keys too: `retries: 0` is `invalid: {retries: 0}`."""

    # flag name -> (field, key in it): flags that set one key of a nested field
    flag_keys: ClassVar[dict[str, tuple[str, str]]] = {
        "retries": ("invalid", "retries"), "on_invalid": ("invalid", "then"), "penalty": ("invalid", "penalty")}

    def __post_init__(self):
        if self.games < 1:
            raise SparringError(f"games must be at least 1, got {self.games}")
        if self.concurrency < 1:
            raise SparringError(f"concurrency must be at least 1, got {self.concurrency}")
        if not self.players:
            raise SparringError("give the players, e.g. --players smollm2 random")


@dataclass
class TournamentConfig:
    game: str
    """Game reference."""
    agents: list[str]
    """The field, e.g. [smollm2, random, cfr, always_bet]."""
    games: int = 100
    """Matches per pairing (even: seats swap evenly)."""
    mode: str = "round_robin"
    """round_robin, or gauntlet (the first agent against each other)."""
    seed: int = 0
    """Run seed."""
    out: str | None = None
    """Run directory; default runs/tournament-<game>-<time>. An existing one with the
    same plan is continued."""
    bootstrap: int = 1000
    """Bootstrap resamples for the rating intervals."""

    def __post_init__(self):
        if self.bootstrap < 1:
            raise SparringError(f"bootstrap must be at least 1, got {self.bootstrap}")


# A config file is a few lines; a cap keeps a wrong file (a data set, /dev/zero) from
# running for minutes and filling memory (a 30 MB YAML took 4.4 GB).
MAX_CONFIG_BYTES = 1_000_000


def load_config(cls: type, yaml_path: Path | None, overrides: dict[str, Any]):
    """Build `cls` from an optional YAML file, then flags that were given (not None).
    Keys are the fields of `cls`; a flag's name (`games-per-step`, `retries`) is also
    a key, the same as the field it sets."""
    return build_config(cls, config_values(cls, yaml_path, overrides))


def config_values(cls: type, yaml_path: Path | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The options given, as `cls`'s fields: the YAML file's, then the flags given."""
    values = _flag_keys_nested(cls, read_config_file(yaml_path)) if yaml_path is not None else {}
    for key, value in _flag_keys_nested(cls, {k: v for k, v in overrides.items() if v is not None}).items():
        both = isinstance(value, dict) and isinstance(values.get(key), dict)
        values[key] = {**values[key], **value} if both else value  # a flag sets one key of a nested field
    return values


def build_config(cls: type, values: dict[str, Any]):
    """`cls` from option values, each checked, with one message naming every problem."""
    import pydantic

    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        keys = sorted(known | set(getattr(cls, "flag_keys", {})))
        raise SparringError(f"unknown option(s) {', '.join(unknown)}: known options are {', '.join(keys)}")
    try:
        return pydantic.TypeAdapter(cls).validate_python(values)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise SparringError(f"bad config: {problems}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """A YAML mapping of option: value from a UTF-8 file of at most MAX_CONFIG_BYTES."""
    import yaml

    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise SparringError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise SparringError(f"config file {path} is a directory: give a YAML file") from None
    except OSError as exc:
        raise SparringError(f"cannot read config file {path} ({exc.strerror or exc})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise SparringError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 1000} kB: a config is a "
                            "YAML mapping of a few options; check the file name")
    try:
        loaded = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SparringError(f"config file {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise SparringError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SparringError(f"config file {path} must be a mapping of option: value")
    return loaded


def _flag_keys_nested(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Keys spelled as flags (dashes, or a flag that sets one key of a nested field)
    as the fields they set."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        key = str(key).replace("-", "_")
        if key in getattr(cls, "flag_keys", {}):
            parent, child = cls.flag_keys[key]
            nested = out.setdefault(parent, {})
            if not isinstance(nested, dict):
                raise SparringError(f"{parent} must be a mapping, e.g. {parent}: {{{child}: ...}}")
            nested[child] = value
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**value, **out[key]}  # keys given as flags win over the field's own mapping
        else:
            out[key] = value
    return out


def config_dict(config) -> dict[str, Any]:
    return dataclasses.asdict(config)


def new_run(cls: type, values: dict, kind: str):
    """The settings of a new run of `cls` from the options given; without an out, a
    fresh default run directory, made only once the settings are known to be good."""
    from sparring.cli.app import default_run_dir

    if values.get("out"):
        return build_config(cls, values)
    return dataclasses.replace(build_config(cls, {**values, "out": f"runs/{kind}"}), out=default_run_dir(kind))


def stored_run_settings(run_dir: str, key: str, kind: str) -> dict:
    """The settings a run was started with (meta `key`): resuming takes them."""
    from sparring.store import RunStore

    store = RunStore(run_dir)
    try:
        stored, held = store.get_meta(key), store.kind()
    finally:
        store.close()
    if stored is None:
        held = f"it holds a {held} run" if held else "it holds no run"
        raise SparringError(f"nothing to resume in {run_dir}: {held}, not a {kind} run. Start one with --out DIR")
    return stored
