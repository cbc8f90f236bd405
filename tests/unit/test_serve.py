"""unitrain serve listens on loopback unless told otherwise, and says what protects it."""

from __future__ import annotations

from unitrain.cli import _parser
from unitrain.runtime.serve import ServedStack, protection_notice


def test_loopback_is_the_default():
    args = _parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"
    assert not ServedStack(host=args.host).exposed


def test_an_exposed_stack_says_what_protects_its_apis(monkeypatch):
    monkeypatch.delenv("PREFECT_SERVER_API_AUTH_STRING", raising=False)
    monkeypatch.delenv("MLFLOW_AUTH_CONFIG_PATH", raising=False)
    stack = ServedStack(host="0.0.0.0")
    assert stack.exposed and stack.prefect_ui == "http://127.0.0.1:4200"
    notice = protection_notice(stack)
    assert "listens on 0.0.0.0" in notice
    assert notice.count("NOTHING") == 2 and "PREFECT_SERVER_API_AUTH_STRING" in notice
    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", "admin:pass")
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", "/etc/mlflow/auth.ini")
    protected = protection_notice(stack)
    assert "NOTHING" not in protected and "admin:pass" not in protected
