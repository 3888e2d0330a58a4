"""`sparring dashboard`: what it refuses, in one clear line and exit code 2."""

import socket

import pytest

from sparring.cli.app import run
from sparring.dashboard.server import bind, is_loopback
from sparring.errors import SparringError


def dashboard_exit(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stopped:
        run(["dashboard", *args])
    captured = capsys.readouterr()
    return stopped.value.code, " ".join((captured.out + captured.err).split())


def test_a_missing_directory_an_empty_one_and_a_port_in_use_exit_2_with_one_message(tmp_path, runs_root, capsys):
    code, said = dashboard_exit([str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "does not exist" in said and "Traceback" not in said
    (tmp_path / "empty").mkdir()
    code, said = dashboard_exit([str(tmp_path / "empty")], capsys)
    assert code == 2 and "no runs under" in said
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, said = dashboard_exit([str(runs_root), "--port", str(port)], capsys)
    assert code == 2 and f"port {port} on 127.0.0.1 is in use" in said and "--port" in said


def test_bind_takes_the_loopback_and_refuses_a_port_in_use():
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
        with pytest.raises(SparringError, match="in use"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()
    with pytest.raises(SparringError, match="not a port"):
        bind("127.0.0.1", 70000)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                            ("127.0.0.2", True), ("0.0.0.0", False), ("192.168.1.5", False),
                                            ("::", False), ("example.org", False)])
def test_only_loopback_addresses_count_as_local(host, loopback):
    assert is_loopback(host) is loopback
