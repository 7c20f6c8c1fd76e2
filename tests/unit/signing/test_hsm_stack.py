"""HSM mode for people and the local stack: `coc keys dev --hsm`, and the seal settings the stack hands signing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local.services import seal_paths, service_env
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit

COC = str(Path(sys.executable).with_name("coc"))
MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def test_keys_dev_hsm_makes_a_token_in_the_state_folder_with_no_key_file_and_prints_its_settings(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COC_", "SOFTHSM2_"))}
    env["COC_STATE_DIR"] = str(tmp_path)
    made = subprocess.run(
        [COC, "keys", "dev", "--hsm"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert made.returncode == 0, made.stderr
    hsm = tmp_path / "hsm"
    printed = dict(line.strip().split("=", 1) for line in made.stdout.splitlines() if line.startswith("  "))
    assert printed["COC_SEAL_PKCS11_PIN_FILE"] == str(hsm / "user.pin")
    assert printed["SOFTHSM2_CONF"] == str(hsm / "softhsm2.conf")
    assert stat.S_IMODE((hsm / "user.pin").stat().st_mode) == 0o600
    assert (hsm / "user.pin").read_text().strip() not in made.stdout  # the PIN is never printed
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".key", ".pem") or p.name.endswith("key")]

    again = subprocess.run(
        [COC, "keys", "dev", "--hsm"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert again.returncode != 0 and "--force" in again.stderr  # an existing token is never replaced silently


def test_the_stack_in_hsm_mode_gives_signing_the_token_and_no_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("COC_SEAL_KEY", "COC_SEAL_CERT", "COC_SEAL_PKCS11_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COC_SEAL_PKCS11_MODULE", MODULE)
    settings = ServiceSettings(_env_file=None, state_dir=tmp_path)

    env = service_env(settings)

    assert "COC_SEAL_KEY" not in env
    assert env["COC_SEAL_PKCS11_PIN_FILE"] == str(tmp_path / "hsm" / "user.pin")
    assert env["COC_SEAL_CERT"] == str(tmp_path / "hsm" / "seal.crt") == str(seal_paths(settings)[1])


def test_the_stack_with_the_file_seal_is_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COC_SEAL_KEY", "COC_SEAL_CERT", "COC_SEAL_PKCS11_MODULE"):
        monkeypatch.delenv(name, raising=False)
    env = service_env(ServiceSettings(_env_file=None, state_dir=tmp_path))
    assert env["COC_SEAL_KEY"] == str(tmp_path / "keys" / "seal.key")
    assert "COC_SEAL_PKCS11_PIN_FILE" not in env
