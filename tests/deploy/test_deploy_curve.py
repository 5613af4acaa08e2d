"""CURVE: encrypted link, and only clients whose public key is allow-listed get service."""

import stat

import pytest
from conftest import StateEchoPolicy, droid_batch

from deploy.client import PolicyClient, ServerUnreachable
from deploy.curve import CurveClientKeys, CurveServerKeys, generate_keypair
from deploy.keys import main as keys_main


@pytest.fixture
def keys(tmp_path):
    assert keys_main([str(tmp_path), "--name", "server", "--name", "robot", "--name", "intruder"]) == 0
    return tmp_path


def test_keygen_writes_pairs_with_private_secret_and_refuses_overwrite(keys, capsys):
    for name in ("server", "robot", "intruder"):
        assert (keys / f"{name}.key").is_file()
        assert stat.S_IMODE((keys / f"{name}.key_secret").stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        generate_keypair(keys, "server")
    assert keys_main([str(keys), "--name", "robot"]) == 1


def test_allowed_client_is_served_and_others_get_nothing(serve, keys):
    server_keys = CurveServerKeys.from_files(keys / "server.key_secret", [keys / "robot.key"])
    server = serve(StateEchoPolicy(), curve=server_keys)
    allowed = CurveClientKeys.from_files(keys / "robot.key_secret", keys / "server.key")
    with PolicyClient(server.endpoint, timeout_s=2, retries=1, curve=allowed) as client:
        assert client.infer(droid_batch(1)).actions.shape == (1, 16, 8)

    intruder = CurveClientKeys.from_files(keys / "intruder.key_secret", keys / "server.key")
    for curve in (intruder, None):  # not allow-listed; plaintext
        with (
            PolicyClient(server.endpoint, timeout_s=0.3, retries=2, curve=curve) as client,
            pytest.raises(ServerUnreachable, match="authentication failure"),
        ):
            client.ping()
    assert server.stats.requests == 1  # nothing from the refused peers reached the policy


def test_wrong_server_key_gets_no_service(serve, keys):
    server = serve(
        StateEchoPolicy(), curve=CurveServerKeys.from_files(keys / "server.key_secret", [keys / "robot.key"])
    )
    wrong = CurveClientKeys.from_files(keys / "robot.key_secret", keys / "intruder.key")
    with (
        PolicyClient(server.endpoint, timeout_s=0.3, retries=1, curve=wrong) as client,
        pytest.raises(ServerUnreachable),
    ):
        client.ping()


def test_empty_allow_list_and_missing_key_files_are_clear_errors(keys, tmp_path):
    with pytest.raises(ValueError, match="allow-list is empty"):
        CurveServerKeys.from_files(keys / "server.key_secret", [])
    with pytest.raises(FileNotFoundError, match="deploy.keys"):
        CurveServerKeys.from_files(tmp_path / "nope.key_secret", [keys / "robot.key"])
    with pytest.raises(ValueError, match="no secret key"):
        CurveServerKeys.from_files(keys / "server.key", [keys / "robot.key"])
