"""The COC_MONGO_ settings become the driver's options: a replica set written by majority, read from its primary."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference

from shared.mongo import client_options, make_client
from shared.settings import CocSettings


def settings(**values: object) -> CocSettings:
    return CocSettings(_env_file=None, **values)  # type: ignore[arg-type]


def test_by_default_writes_wait_for_a_majority_and_reads_see_only_majority_writes() -> None:
    options = client_options(settings())
    assert options["w"] == "majority"
    assert options["wTimeoutMS"] == 10_000
    assert options["readConcernLevel"] == "majority"
    assert options["readPreference"] == "primary"
    assert (options["retryWrites"], options["retryReads"]) == (True, True)
    assert not {"tls", "username", "password"} & options.keys()


async def test_the_client_carries_the_options_it_was_made_with() -> None:
    client = make_client(settings(mongo_write_concern="2", mongo_read_concern="local"))
    try:
        assert client.write_concern.document == {"w": 2, "wtimeout": 10_000}
        assert client.read_concern == ReadConcern("local")
        assert client.read_preference == ReadPreference.PRIMARY
    finally:
        await client.close()


def test_a_write_concern_that_acknowledges_nothing_is_refused_naming_the_field() -> None:
    for refused in ("0", "all", "majority;"):
        with pytest.raises(ValidationError, match="mongo_write_concern"):
            settings(mongo_write_concern=refused)


def test_a_ca_file_turns_tls_on_and_is_passed_with_the_client_certificate(tmp_path: Path) -> None:
    ca, mine = tmp_path / "ca.pem", tmp_path / "client.pem"
    ca.write_text("ca")
    mine.write_text("client")
    options = client_options(settings(mongo_tls_ca_file=ca, mongo_tls_cert_key_file=mine))
    assert (options["tls"], options["tlsCAFile"], options["tlsCertificateKeyFile"]) == (
        True,
        str(ca),
        str(mine),
    )


def test_a_missing_ca_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="mongo_tls_ca_file"):
        settings(mongo_tls_ca_file=tmp_path / "absent.pem")


def test_the_password_is_read_from_its_file_and_never_part_of_the_settings(tmp_path: Path) -> None:
    secret = tmp_path / "mongo.password"
    secret.write_text("s3cret-from-file\nsecond line ignored\n")
    configured = settings(mongo_username="coc-status", mongo_password_file=secret, mongo_auth_source="coc")
    options = client_options(configured)
    assert (options["username"], options["password"]) == ("coc-status", "s3cret-from-file")
    assert (options["authSource"], options["authMechanism"]) == ("coc", "SCRAM-SHA-256")
    assert "s3cret" not in repr(configured) and "s3cret" not in configured.model_dump_json()


def test_a_user_without_a_password_file_is_refused() -> None:
    with pytest.raises(ValidationError, match="mongo_password_file"):
        settings(mongo_username="coc-status")


def test_an_empty_password_file_is_refused_naming_the_setting(tmp_path: Path) -> None:
    secret = tmp_path / "empty"
    secret.write_text("\n")
    with pytest.raises(ValueError, match="mongo_password_file"):
        client_options(settings(mongo_username="coc-status", mongo_password_file=secret))


def test_a_password_in_the_url_is_refused_so_it_never_sits_in_the_environment() -> None:
    with pytest.raises(ValidationError, match="COC_MONGO_PASSWORD_FILE"):
        settings(mongo_url="mongodb://coc:hunter2@mongo-1,mongo-2/?replicaSet=rs0")
    assert settings(mongo_url="mongodb://mongo-1,mongo-2/?replicaSet=rs0").mongo_url.endswith("rs0")


def test_options_given_by_the_caller_win_over_the_settings() -> None:
    client = make_client(settings(), serverSelectionTimeoutMS=1_500, w=1)
    assert client.write_concern.document["w"] == 1
    assert client.options.server_selection_timeout == 1.5
