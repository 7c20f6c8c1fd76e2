"""Validation tells which release policy its settings give a group no change names, and which setting says so."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.validation import routes
from services.validation.policy import PolicyInForce, ReleasePolicy
from services.validation.settings import ValidationSettings
from shared.auth import Authenticator, Role

pytestmark = pytest.mark.unit
TOKEN = "viewer-token"


def client(settings: ValidationSettings) -> TestClient:
    app = FastAPI()
    auth = Authenticator({Role.VIEWER: TOKEN})
    app.include_router(routes.router(None, auth, PolicyInForce(settings.policy())))  # type: ignore[arg-type]
    return TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})


def test_the_default_policy_and_each_groups_own_come_with_the_settings_that_set_them() -> None:
    settings = ValidationSettings(
        release_policy={"CHR": ReleasePolicy.REVIEW}, default_release_policy=ReleasePolicy.HOLD
    )
    answer = client(settings).get("/v1/policy-defaults").json()
    assert answer == {
        "default": "hold",
        "default_setting": "COC_DEFAULT_RELEASE_POLICY",
        "by_group": {"CHR": "review"},
        "by_group_setting": "COC_RELEASE_POLICY",
    }


def test_the_setting_names_said_are_the_environment_variables_validation_reads() -> None:
    prefix = str(ValidationSettings.model_config.get("env_prefix"))
    fields = ValidationSettings.model_fields
    assert f"{prefix}default_release_policy".upper() == routes.DEFAULT_POLICY_SETTING
    assert f"{prefix}release_policy".upper() == routes.GROUP_POLICY_SETTING
    assert "default_release_policy" in fields and "release_policy" in fields


def test_the_defaults_need_a_token() -> None:
    answer = client(ValidationSettings()).get("/v1/policy-defaults", headers={"Authorization": ""})
    assert answer.status_code == 401
