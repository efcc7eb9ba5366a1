"""The signing secret: no built-in default, a refusal to start without one, and `sched run` keeps its own."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from services import cli
from shared.manage import SigningSecretMissing, manage_token, require_signing_secret, signing_secret_problem
from shared.settings import load_settings


def test_settings_have_no_signing_secret_unless_the_environment_gives_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHED_SIGNING_SECRET", raising=False)
    assert load_settings().signing_secret == ""
    monkeypatch.setenv("SCHED_SIGNING_SECRET", "x" * 40)
    assert load_settings().signing_secret == "x" * 40


@pytest.mark.parametrize("secret", ["", "sched-development-signing-secret", "short"])
def test_a_missing_public_or_short_secret_is_refused_with_a_clear_message(secret: str) -> None:
    assert signing_secret_problem(secret) is not None
    with pytest.raises(SigningSecretMissing) as refused:
        require_signing_secret(secret, "the query service")
    assert "the query service refuses to start" in str(refused.value)
    assert "SCHED_SIGNING_SECRET" in str(refused.value)


def test_a_long_random_secret_is_accepted() -> None:
    secret = "k" * 48
    assert require_signing_secret(secret, "the gateway") == secret


def test_nothing_is_signed_with_an_empty_key() -> None:
    with pytest.raises(ValueError):
        manage_token("", "cancel", "event_1", "2026-03-02T10:00:00Z")


def test_sched_run_makes_one_secret_kept_private_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "STATE_DIR", tmp_path / ".sched")
    monkeypatch.setattr(cli, "SECRET_FILE", tmp_path / ".sched" / "signing_secret")
    assert cli.project_signing_secret() is None
    secret = cli.project_signing_secret(create=True)
    assert secret is not None and signing_secret_problem(secret) is None
    assert stat.S_IMODE(os.stat(tmp_path / ".sched" / "signing_secret").st_mode) == 0o600
    assert cli.project_signing_secret(create=True) == secret == cli.project_signing_secret()
