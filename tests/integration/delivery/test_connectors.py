"""The connectors against local authorities speaking their documented protocols (real TLS, real HTTP).

The NAP requires a client certificate from the test CA; the VCA issues OAuth2
tokens. The certificates sent are real signed IVI documents, read back by the
servers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import SecretStr

from devkit.authorities import Nap, Pki, Vca, make_pki
from services.delivery.adapters import connectors
from services.delivery.adapters.connectors import ConfigurationError, NapConnector, VcaConnector, message_id
from services.delivery.deliver import Answer, Delivery, Step
from services.delivery.settings import DeliverySettings, Destination
from shared.contracts import Owner

VIN_TAG = "VehicleIdentificationNumber"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), clients=("client", "stranger"))


@pytest.fixture
def nap_server(pki: Pki) -> Iterator[Nap]:
    with Nap(pki).running() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def vca_server() -> Iterator[Vca]:
    with Vca("coc-client", "s3cret").running() as server:
        yield server  # type: ignore[misc]


def signed(specimen_bytes: bytes, reference: str) -> bytes:
    """The official specimen (a signed IVI document) with its own IviReferenceId."""
    start = specimen_bytes.index(b"<IviReferenceId>") + len(b"<IviReferenceId>")
    end = specimen_bytes.index(b"</IviReferenceId>")
    return specimen_bytes[:start] + reference.encode() + specimen_bytes[end:]


def delivery(reference: str, destination: str) -> Delivery:
    return Delivery(
        id=f"V:{reference}:{destination}",
        vin="V",
        revision=1,
        record_id="V:1",
        version_number=1,
        reference_id=reference,
        sha256="",
        destination=destination,
        step=Step.SENDING,
        attempts=1,
    )


def nap_settings(pki: Pki, server: Nap, client: str = "client", timeout_s: float = 5.0) -> DeliverySettings:
    destination = Destination(
        kind="nap",
        countries=("LT",),
        endpoints={"acceptance": server.url},
        client_cert=pki.cert(client),
        client_key=pki.key(client),
        server_ca=pki.ca,
        timeout_s=timeout_s,
    )
    return DeliverySettings(_env_file=None, delivery_destinations={"nap-lt": destination})  # type: ignore[call-arg]


def vca_settings(server: Vca, secret: str = "s3cret") -> DeliverySettings:
    destination = Destination(
        kind="vca",
        countries=("UK",),
        endpoints={"acceptance": server.url},
        token_urls={"acceptance": server.token_url},
        client_id="coc-client",
        scopes={"acceptance": "ecoc.submit"},
        manufacturer_id="M-1",
        contact_id="C-1",
    )
    return DeliverySettings(  # type: ignore[call-arg]
        _env_file=None,
        delivery_destinations={"vca": destination},
        delivery_secrets={"vca": SecretStr(secret)},
    )


def connector_of(settings: DeliverySettings) -> NapConnector | VcaConnector:
    name, destination = next(iter(settings.delivery_destinations.items()))
    kind = NapConnector if destination.kind == "nap" else VcaConnector
    return kind(name, destination, settings)


async def test_nap_accepts_over_mutual_tls_and_answers_a_resend_as_the_duplicate_it_is(
    pki: Pki, nap_server: Nap, specimen_bytes: bytes
) -> None:
    connector = connector_of(nap_settings(pki, nap_server))
    document = signed(specimen_bytes, "11111111-2222-4333-8444-555555555555")
    try:
        first = await connector.send(delivery("r1", "nap-lt"), document)
        again = await connector.send(delivery("r1", "nap-lt"), document)
    finally:
        await connector.close()
    assert first.answer is Answer.ACCEPTED and first.receipt_id
    assert again.answer is Answer.DUPLICATE and again.receipt_id == first.receipt_id
    assert len(nap_server.ledger.stored) == 1
    kept = next(iter(nap_server.ledger.stored.values()))
    assert kept["reference"] == "11111111-2222-4333-8444-555555555555"


async def test_nap_refuses_a_client_certificate_of_another_ca_and_the_reply_says_so_for_integration(
    pki: Pki, nap_server: Nap, specimen_bytes: bytes
) -> None:
    connector = connector_of(nap_settings(pki, nap_server, client="stranger"))
    try:
        reply = await connector.send(delivery("r2", "nap-lt"), signed(specimen_bytes, "r2"))
    finally:
        await connector.close()
    assert reply.answer is Answer.TRANSIENT and reply.owner is Owner.INTEGRATION
    assert "TLS" in reply.reason and "client" in reply.reason
    assert not nap_server.ledger.stored


async def test_nap_rejection_of_the_data_is_read_with_code_and_field(
    pki: Pki, nap_server: Nap, specimen_bytes: bytes
) -> None:
    vin = specimen_bytes.split(f"<{VIN_TAG}>".encode())[1].split(b"<")[0].decode()
    nap_server.behaviour.reject[vin] = (
        "VALUE_OUT_OF_RANGE",
        "CocDataGroup/MassGroup/ActualMass",
        "mass too high",
    )
    connector = connector_of(nap_settings(pki, nap_server))
    try:
        reply = await connector.send(delivery("r3", "nap-lt"), signed(specimen_bytes, "r3"))
    finally:
        await connector.close()
    assert reply.answer is Answer.REJECTED
    assert (reply.code, reply.field, reply.reason) == (
        "VALUE_OUT_OF_RANGE",
        "CocDataGroup/MassGroup/ActualMass",
        "mass too high",
    )


async def test_nap_dropped_connection_503_and_silence_are_faults_to_retry(
    pki: Pki, nap_server: Nap, specimen_bytes: bytes
) -> None:
    nap_server.behaviour.fail_next = ["drop", "503", "slow"]
    nap_server.behaviour.slow_s = 3.0
    connector = connector_of(nap_settings(pki, nap_server, timeout_s=1.0))
    document = signed(specimen_bytes, "r4")
    try:
        replies = [await connector.send(delivery("r4", "nap-lt"), document) for _ in range(4)]
    finally:
        await connector.close()
    assert [r.answer for r in replies] == [Answer.TRANSIENT] * 3 + [Answer.ACCEPTED], [
        r.reason for r in replies
    ]
    assert "did not answer in time" in replies[2].reason
    assert len(nap_server.ledger.stored) == 1


def test_a_nap_without_its_client_certificate_cannot_be_configured(pki: Pki, tmp_path: Path) -> None:
    destination = Destination(kind="nap", countries=("LT",), endpoints={"acceptance": "https://x"})
    settings = DeliverySettings(_env_file=None, delivery_destinations={"n": destination})  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="client_cert"):
        NapConnector("n", destination, settings)
    missing = destination.model_copy(
        update={"client_cert": tmp_path / "no.pem", "client_key": pki.key("client")}
    )
    with pytest.raises(ConfigurationError, match=r"no\.pem not found"):
        NapConnector("n", missing, settings)
    production = DeliverySettings(  # type: ignore[call-arg]
        _env_file=None, delivery_environment="production", delivery_destinations={"n": destination}
    )
    with pytest.raises(ConfigurationError, match="production"):
        NapConnector("n", destination, production)


async def test_vca_takes_a_token_submits_with_the_ids_and_the_poll_ends_accepted(
    vca_server: Vca, specimen_bytes: bytes
) -> None:
    connector = connector_of(vca_settings(vca_server))
    entry = delivery("v1", "vca")
    try:
        submitted = await connector.send(entry, signed(specimen_bytes, "v1"))
        assert submitted.answer is Answer.SUBMITTED and submitted.submission_id
        entry = Delivery(
            **{**entry.__dict__, "step": Step.SUBMITTED, "submission_id": submitted.submission_id}
        )
        polls = [await connector.poll(entry) for _ in range(2)]
    finally:
        await connector.close()
    assert [p.answer for p in polls] == [Answer.PROCESSING, Answer.ACCEPTED]
    assert vca_server.tokens_issued == 1


async def test_vca_token_refused_before_its_time_is_renewed_once_and_the_call_goes_through(
    vca_server: Vca, specimen_bytes: bytes
) -> None:
    connector = connector_of(vca_settings(vca_server))
    try:
        assert (
            await connector.send(delivery("v2", "vca"), signed(specimen_bytes, "v2"))
        ).answer is Answer.SUBMITTED
        vca_server.expire_tokens()
        again = await connector.send(delivery("v3", "vca"), signed(specimen_bytes, "v3"))
    finally:
        await connector.close()
    assert again.answer is Answer.SUBMITTED
    assert vca_server.tokens_issued == 2 and vca_server.refused_tokens == 1


async def test_vca_token_near_its_expiry_is_renewed_before_use(
    specimen_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The connector's clock only (the event loop keeps the real one): 31 s tokens are
    # used while more than TOKEN_MARGIN_S (30 s) of their life is left, so for 1 s.
    now = [1_000.0]
    monkeypatch.setattr(connectors, "time", SimpleNamespace(monotonic=lambda: now[0]))
    with Vca("coc-client", "s3cret", token_lifetime_s=31).running() as server:
        connector = connector_of(vca_settings(server))  # type: ignore[arg-type]
        issued = []
        try:
            for n, seconds_later in enumerate((0.0, 0.5, 1.0)):
                now[0] += seconds_later
                reply = await connector.send(delivery(f"v5{n}", "vca"), signed(specimen_bytes, f"v5{n}"))
                assert reply.answer is Answer.SUBMITTED
                issued.append(server.tokens_issued)  # type: ignore[attr-defined]
        finally:
            await connector.close()
        assert issued == [1, 1, 2] and server.refused_tokens == 0  # type: ignore[attr-defined]


async def test_vca_with_a_wrong_secret_says_the_token_endpoint_refused(
    vca_server: Vca, specimen_bytes: bytes
) -> None:
    connector = connector_of(vca_settings(vca_server, secret="wrong"))
    try:
        reply = await connector.send(delivery("v4", "vca"), signed(specimen_bytes, "v4"))
    finally:
        await connector.close()
    assert reply.answer is Answer.TRANSIENT and reply.owner is Owner.INTEGRATION
    assert "token endpoint refused" in reply.reason and "invalid_client" in reply.reason
    assert not vca_server.ledger.stored


def test_every_send_of_one_delivery_is_the_same_message() -> None:
    assert message_id(delivery("a", "n")) == message_id(delivery("a", "n")) != message_id(delivery("b", "n"))
