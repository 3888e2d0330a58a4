"""Run directories and config files through the real command line (in process):
nothing writes over a run store or a file it did not make, a directory holds one
kind of run, runs grow and resume with their own settings, and bad input is one
clear message."""

import sqlite3

import pytest
import yaml

from sparring.cli.app import default_run_dir, run
from sparring.store import DB_NAME, RunStore


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run `sparring ARGS` in this process: exit code, stdout, stderr (whitespace
    folded, as rich wraps long lines)."""
    with pytest.raises(SystemExit) as exited:
        run(["--threads", "1", *args])
    out, err = capsys.readouterr()
    code = exited.value.code or 0
    assert "Traceback" not in out + err
    return code, " ".join(out.split()), " ".join(err.split())


def play(capsys, out, games=2, *more):
    return cli(capsys, "play", "kuhn_poker", "--players", "random", "always_bet", "--games", str(games),
               "--out", str(out), *more)


def stored(run_dir):
    store = RunStore(run_dir)
    try:
        return store.matches(), store.get_meta("kind")
    finally:
        store.close()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


# ---- 1. nothing writes over a run store or someone else's file ---------------------------


def test_export_never_writes_over_the_run_store(tmp_path, capsys):
    assert play(capsys, "k1")[0] == 0
    for force in ((), ("--force",)):
        code, _, err = cli(capsys, "export", "k1", "--to", f"k1/{DB_NAME}", *force)
        assert code == 2 and "run store" in err and "not even with --force" in err
    matches, kind = stored(tmp_path / "k1")  # still a run store with its matches
    assert len(matches) == 2 and kind == "play"
    # a copy of a store under another name is a run store too
    (tmp_path / "copy.db").write_bytes((tmp_path / "k1" / DB_NAME).read_bytes())
    assert cli(capsys, "export", "k1", "--to", "copy.db", "--force")[0] == 2


def test_export_replaces_an_existing_file_only_with_force(tmp_path, capsys):
    assert play(capsys, "k1")[0] == 0
    (tmp_path / "notes.jsonl").write_text("mine\n")
    code, _, err = cli(capsys, "export", "k1", "--to", "notes.jsonl")
    assert code == 2 and "notes.jsonl exists: give --force" in err
    assert (tmp_path / "notes.jsonl").read_text() == "mine\n"
    assert cli(capsys, "export", "k1", "--to", "notes.jsonl", "--force")[0] == 0
    assert len((tmp_path / "notes.jsonl").read_text().splitlines()) == 2
    # the default file is export's own: a new export replaces it
    assert cli(capsys, "export", "k1")[0] == 0 and cli(capsys, "export", "k1")[0] == 0
    code, _, err = cli(capsys, "export", "k1", "--to", "nowhere/deeper/m.jsonl")
    assert code == 2 and "cannot write nowhere/deeper/m.jsonl" in err


# ---- 3. a run directory holds one kind of run ---------------------------------------------


def _train(capsys, tiny_model_dir, tmp_path, out, **settings):
    """A training run of the tiny random Llama, started with non-default settings."""
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({
        "model": str(tiny_model_dir), "max_tokens": 4, "micro_batch": 4, "dtype": "float32",
        "checkpoint_every": 1, "eval_every": 0, "games_per_step": 2, **settings}))
    return cli(capsys, "train", "--config", "t.yaml", "--steps", "1", "--out", str(out))


def test_play_into_a_training_run_is_refused(tiny_model_dir, tmp_path, capsys):
    assert _train(capsys, tiny_model_dir, tmp_path, "t1")[0] == 0
    before, kind = stored(tmp_path / "t1")
    assert kind == "train"
    code, out, err = play(capsys, "t1")
    assert code == 2 and "t1 holds a train run" in err and "continuing" not in out
    after, _ = stored(tmp_path / "t1")
    assert after == before
    assert RunStore(tmp_path / "t1").get_meta("config") is None  # no play config written into it


def test_each_kind_refuses_another(tiny_model_dir, tmp_path, capsys):
    assert play(capsys, "p")[0] == 0
    code, _, err = cli(capsys, "tournament", "--game", "kuhn_poker", "--agents", "random", "cfr", "--games", "2",
                       "--bootstrap", "5", "--out", "p")
    assert code == 2 and "p holds a play run" in err
    code, _, err = _train(capsys, tiny_model_dir, tmp_path, "p")
    assert code == 2 and "p holds a play run" in err
    assert not (tmp_path / "p" / "checkpoints").exists()
    code, _, err = cli(capsys, "bench", "matrix2x2", "--agent", "random", "--games", "2", "--out", "p")
    assert code == 2 and "p holds a play run" in err
    assert cli(capsys, "tournament", "--game", "kuhn_poker", "--agents", "random", "cfr", "--games", "2",
               "--bootstrap", "5", "--out", "t")[0] == 0
    assert stored(tmp_path / "t")[1] == "tournament"
    code, _, err = play(capsys, "t")
    assert code == 2 and "t holds a tournament run" in err


def test_a_store_from_before_kinds_is_known_by_its_settings(tmp_path, capsys):
    assert play(capsys, "old")[0] == 0
    db = sqlite3.connect(tmp_path / "old" / DB_NAME)
    with db:
        db.execute("DELETE FROM meta WHERE key = 'kind'")
    db.close()
    code, _, err = cli(capsys, "bench", "matrix2x2", "--agent", "random", "--games", "2", "--out", "old")
    assert code == 2 and "old holds a play run" in err
    assert RunStore(tmp_path / "old").get_meta("benchmark") is None


# ---- 2. resume takes the stored settings ------------------------------------------------------


def test_train_resume_takes_the_stored_settings(tiny_model_dir, tmp_path, capsys):
    assert _train(capsys, tiny_model_dir, tmp_path, "t1", lr=0.002)[0] == 0
    # the README's command, with a longer run: every other setting is the run's own
    code, _, err = cli(capsys, "train", "--resume", "t1", "--steps", "2")
    assert code == 0, err
    store = RunStore(tmp_path / "t1")
    config = store.get_meta("train_config")
    assert [s["step"] for s in store.train_steps()] == [1, 2]
    store.close()
    assert (config["steps"], config["checkpoint_every"], config["lr"], config["games_per_step"]) == (2, 1, 0.002, 2)
    assert (tmp_path / "t1" / "checkpoints" / "latest").read_text().strip() == "step-000002"
    # what may not change is refused, by name
    code, _, err = cli(capsys, "train", "--resume", "t1", "--steps", "3", "--lr", "0.5", "--games-per-step", "4")
    assert code == 2
    assert "games_per_step (2 there, 4 now)" in err and "lr (0.002 there, 0.5 now)" in err
    assert "steps" not in err.split("now)")[0]  # steps may change: it is not named as refused


def test_resume_of_a_play_run_says_what_it_holds(tmp_path, capsys):
    assert play(capsys, "p")[0] == 0
    code, _, err = cli(capsys, "train", "--resume", "p")
    assert code == 2 and "nothing to resume in p: it holds a play run" in err


# ---- 4. more games extend a play run -----------------------------------------------------------


def test_more_games_extend_a_play_run_and_keep_the_old_matches(tmp_path, capsys):
    assert play(capsys, "r", 2)[0] == 0
    first, _ = stored(tmp_path / "r")
    code, out, _ = play(capsys, "r", 5)
    assert code == 0 and "2 of 5 matches already stored" in out
    grown, _ = stored(tmp_path / "r")
    assert [m.index for m in grown] == [0, 1, 2, 3, 4] and grown[:2] == first
    assert play(capsys, "fresh", 5)[0] == 0  # the same plan: the same seeds and seats as a 5-game run
    fresh, _ = stored(tmp_path / "fresh")
    assert [(m.seed, m.seats) for m in grown] == [(m.seed, m.seats) for m in fresh]
    assert RunStore(tmp_path / "r").get_meta("config")["games"] == 5
    code, _, err = play(capsys, "r", 3)
    assert code == 2 and "may grow, never shrink" in err
    code, _, err = play(capsys, "r", 6, "--seed", "1")
    assert code == 2 and "seed differ" in err


# ---- 5. default run directories are unique ------------------------------------------------------


def test_default_run_dirs_are_new_and_unique(tmp_path):
    made = [default_run_dir("kuhn_poker") for _ in range(20)]  # well within one second
    assert len(set(made)) == 20
    assert all((tmp_path / d).is_dir() and not any((tmp_path / d).iterdir()) for d in made)


def test_two_default_runs_never_share_a_directory(tmp_path, capsys):
    for _ in range(2):
        assert cli(capsys, "play", "kuhn_poker", "--players", "random", "random", "--games", "1")[0] == 0
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(len(stored(r)[0]) == 1 for r in runs)


# ---- 6. bad output paths ---------------------------------------------------------------------------


def test_bad_out_paths_are_clear_errors(tmp_path, capsys):
    (tmp_path / "home").mkdir()  # stands for `--out /` or `--out ~`: a folder of other files
    (tmp_path / "home" / "notes.txt").write_text("mine")
    code, _, err = play(capsys, "home")
    assert code == 2 and "holds other files and no run" in err
    assert not (tmp_path / "home" / DB_NAME).exists()
    (tmp_path / "file").write_text("mine")
    code, _, err = play(capsys, "file")
    assert code == 2 and "file is a file" in err and (tmp_path / "file").read_text() == "mine"
    code, _, err = play(capsys, "file/run")  # a path nobody can write
    assert code == 2 and "cannot make the run directory file/run" in err
    (tmp_path / "empty").mkdir()
    assert play(capsys, "empty")[0] == 0  # an empty directory is a new run's


# ---- 7. config files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"game: kuhn_poker\nplayers: [\xff\xfe]\n"), "is not UTF-8 text"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_text("# " + "x" * 2_000_000 + "\ngame: kuhn_poker\n"), "larger than 1000 kB"),
])
def test_bad_config_files_are_clear_errors(tmp_path, capsys, make, message):
    make(tmp_path / "c.yaml")
    for command in (["play"], ["tournament"], ["train"]):
        code, _, err = cli(capsys, *command, "--config", "c.yaml")
        assert code == 2 and message in err, (command, err)


def test_flag_names_are_yaml_keys_too(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("game: kuhn_poker\nplayers: [random, always_bet]\ngames: 2\nout: r\n"
                                     "retries: 0\non-invalid: random\n")
    assert cli(capsys, "play", "--config", "c.yaml")[0] == 0
    rule = RunStore(tmp_path / "r").get_meta("config")["invalid"]
    assert (rule["retries"], rule["then"]) == (0, "random")
    # a flag sets one key of the nested rule and keeps the file's others
    (tmp_path / "d.yaml").write_text("game: kuhn_poker\nplayers: [random, always_bet]\ngames: 2\nout: s\n"
                                     "invalid: {then: random, penalty: -2}\n")
    assert cli(capsys, "play", "--config", "d.yaml", "--retries", "0")[0] == 0
    rule = RunStore(tmp_path / "s").get_meta("config")["invalid"]
    assert (rule["retries"], rule["then"], rule["penalty"]) == (0, "random", -2.0)
    (tmp_path / "e.yaml").write_text("game: kuhn_poker\nplayers: [random, random]\nretry: 1\n")
    code, _, err = cli(capsys, "play", "--config", "e.yaml")
    assert code == 2 and "unknown option(s) retry" in err and "retries" in err


def test_tournament_takes_a_config_file(tmp_path, capsys):
    (tmp_path / "t.yaml").write_text("game: kuhn_poker\nagents: [always_bet, always_pass]\ngames: 4\n"
                                     "bootstrap: 5\nout: t\n")
    code, out, err = cli(capsys, "tournament", "--config", "t.yaml", "--seed", "3")
    assert code == 0, err
    plan = RunStore(tmp_path / "t").get_meta("tournament")
    assert (plan["agents"], plan["games_per_pair"], plan["seed"]) == (["always_bet", "always_pass"], 4, 3)
    assert "+1.00 ± 0.00" in out  # always_bet takes 1 chip from always_pass in every deal
