"""Alert routing from stack config: validation, secrets only, and what the cluster's Alertmanager gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.components import monitoring
from infra.config import ConfigError, parse_stack_config
from infra.config.alerts import AlertsConfig
from infra.preview.project import Project
from tests.infra.test_config import platform

ROOT = Path(__file__).resolve().parents[2]
KEY = "ai-platform:observability"
FILES = monitoring.ALERTMANAGER_CREDENTIALS_DIR
PAGER = {"name": "vision-pager", "type": "pagerduty", "routingKey": "R0UT1NG"}
SLACK = {"name": "platform-slack", "type": "slack", "apiUrl": "https://hooks.slack.com/services/T/B/X",
         "channel": "#alerts"}
HOOK = {"name": "hook", "type": "webhook", "url": "https://hooks.example.com/alerts", "bearerToken": "t0k3n"}
MAIL = {"name": "mail", "type": "email", "to": "oncall@example.com", "from": "alerts@example.com",
        "smarthost": "email-smtp.us-east-1.amazonaws.com:587", "authUsername": "AKIA", "authPassword": "pw"}


def alerts_values(alerts: dict[str, Any]) -> dict[str, str]:
    return platform(observability={"alerts": alerts})


def parse(alerts: dict[str, Any], *, secure: tuple[str, ...] | None = None, secret_keys: tuple[str, ...] = (KEY,)):
    """Parse with every credential a secret unless `secure` lists the exact secure paths."""
    values = alerts_values(alerts)
    return parse_stack_config(values, project="ai-platform", stack="dev", secret_keys=secret_keys,
                              secure_paths=secure)


def problems_of(alerts: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(alerts, **kwargs)
    return [p.render() for p in caught.value.problems]


def test_no_alerts_config_means_no_receiver_and_the_default_reaches_nobody():
    config = parse_stack_config(platform(), project="ai-platform", stack="dev")
    assert config.observability.alerts == AlertsConfig()
    rendered = monitoring.alertmanager_config(config.observability.alerts)
    assert rendered["route"]["receiver"] == "default"
    assert {r["name"] for r in rendered["receivers"]} == {"default", "null"}


def test_routes_by_team_and_severity_in_order_then_the_default():
    alerts = parse({"receivers": [PAGER, SLACK], "defaultReceiver": "platform-slack",
                    "routes": [{"team": "vision", "severity": "critical", "receiver": "vision-pager"},
                               {"severity": "warning", "receiver": "platform-slack", "continue": True}]}
                   ).observability.alerts
    route = monitoring.alertmanager_config(alerts)["route"]
    assert route["receiver"] == "platform-slack"
    assert route["routes"] == [
        {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
        {"receiver": "vision-pager", "matchers": ['team = "vision"', 'severity = "critical"']},
        {"receiver": "platform-slack", "matchers": ['severity = "warning"'], "continue": True},
    ]


@pytest.mark.parametrize(("receiver", "rendered"), [
    (PAGER, {"pagerduty_configs": [{"send_resolved": True, "severity": "{{ .CommonLabels.severity }}",
                                    "routing_key_file": f"{FILES}/vision-pager-routingKey"}]}),
    (HOOK, {"webhook_configs": [{"send_resolved": True, "url": "https://hooks.example.com/alerts", "http_config": {
        "authorization": {"type": "Bearer",
                          "credentials_file": f"{FILES}/hook-bearerToken"}}}]}),
    (MAIL, {"email_configs": [{"send_resolved": True, "to": "oncall@example.com", "from": "alerts@example.com",
                               "smarthost": "email-smtp.us-east-1.amazonaws.com:587", "require_tls": True,
                               "auth_username": "AKIA",
                               "auth_password_file": f"{FILES}/mail-authPassword"}]}),
])
def test_each_receiver_reads_its_credential_from_a_file(receiver: dict[str, Any], rendered: dict[str, Any]):
    alerts = parse({"receivers": [receiver]}).observability.alerts
    config = monitoring.alertmanager_config(alerts)
    assert config["receivers"][0] == {"name": receiver["name"], **rendered}


def test_credentials_go_to_a_secret_and_never_into_the_chart_values():
    alerts = parse({"receivers": [PAGER, SLACK, HOOK, MAIL]}).observability.alerts
    secret = monitoring.alertmanager_credentials(alerts)
    assert secret == {"vision-pager-routingKey": "R0UT1NG", "platform-slack-apiUrl": SLACK["apiUrl"],
                      "hook-bearerToken": "t0k3n", "mail-authPassword": "pw"}
    values = monitoring.metrics_stack_values(monitoring_config(), "gp3", "c", alerts)
    text = repr(values)
    assert not any(credential in text for credential in secret.values())
    assert values["alertmanager"]["alertmanagerSpec"]["secrets"] == [monitoring.ALERTMANAGER_CREDENTIALS_SECRET]
    assert monitoring.ALERTMANAGER_CREDENTIALS_DIR == "/etc/alertmanager/secrets/alertmanager-credentials"


def test_without_credentials_no_secret_is_mounted():
    values = monitoring.metrics_stack_values(monitoring_config(), "gp3", "c", AlertsConfig())
    assert "secrets" not in values["alertmanager"]["alertmanagerSpec"]


def monitoring_config():
    from infra.config.observability import ENVIRONMENT_DEFAULTS, MetricsConfig

    return MetricsConfig.model_validate(ENVIRONMENT_DEFAULTS["dev"]["metrics"])


def test_a_plain_text_credential_is_an_error_that_says_how_to_set_it_and_does_not_echo_it():
    assert problems_of({"receivers": [PAGER]}, secret_keys=()) == [
        f"{KEY}.alerts.receivers[0].routingKey = \"(plain text, not shown)\": a credential must be a Pulumi "
        "secret: set it with `pulumi config set --secret --path "
        "'observability.alerts.receivers[0].routingKey' <value>`"]


def test_the_stack_files_secure_paths_decide_when_known():
    """One secure value marks the whole key secret in the engine; the stack file says which ones are."""
    secure = (f"{KEY}.alerts.receivers[0].routingKey",)
    found = problems_of({"receivers": [PAGER, SLACK]}, secure=secure)
    assert len(found) == 1 and found[0].startswith(f"{KEY}.alerts.receivers[1].apiUrl = ")
    assert parse({"receivers": [PAGER]}, secure=secure, secret_keys=()).observability.alerts.receivers


@pytest.mark.parametrize(("alerts", "expected"), [
    ({"receivers": [PAGER], "routes": [{"team": "vision", "receiver": "vision-pagr"}]},
     f"{KEY}.alerts.routes[0].receiver = \"vision-pagr\": unknown receiver 'vision-pagr'; receivers: vision-pager"),
    ({"receivers": [PAGER], "defaultReceiver": "nobody"},
     f"{KEY}.alerts.defaultReceiver = \"nobody\": unknown receiver 'nobody'; receivers: vision-pager"),
    ({"routes": [{"receiver": "x"}]},
     f"{KEY}.alerts.routes[0] = {{\"receiver\": \"x\"}}: a route must match team, severity or both "
     "(use defaultReceiver for the rest)"),
    ({"receivers": [{"name": "p", "type": "pagerduty"}]},
     f"{KEY}.alerts.receivers[0].routingKey = (not set): required key is not set"),
    ({"receivers": [{**HOOK, "url": "http://hooks.example.com/"}]},
     f"{KEY}.alerts.receivers[0].url = \"http://hooks.example.com/\": must be an https:// URL "
     "(http:// only on loopback, for local tests)"),
    ({"receivers": [{"name": "x", "type": "sms"}]},
     f"{KEY}.alerts.receivers[0] = {{\"name\": \"x\", \"type\": \"sms\"}}: Input tag 'sms' found using 'type' "
     "does not match any of the expected tags: 'webhook', 'slack', 'pagerduty', 'email'"),
    ({"receivers": [PAGER, PAGER]},
     f"{KEY}.alerts.receivers = [{{\"name\": \"vision-pager\", \"type\": \"pagerduty\", \"routingKey\": "
     "\"R0UT1NG\"}, {\"name\": \"vision-pager\", \"type\": \"pagerduty\", \"routingKey\": \"R0UT1NG\"}]: "
     "receiver names must be unique; repeated: vision-pager"),
])
def test_bad_routing_names_key_value_and_what_is_allowed(alerts: dict[str, Any], expected: str):
    assert problems_of(alerts) == [expected]


def test_a_webhook_on_loopback_may_be_plain_http_for_local_tests():
    alerts = parse({"receivers": [{"name": "hook", "type": "webhook", "url": "http://127.0.0.1:8080/"}]})
    assert alerts.observability.alerts.receivers[0].url == "http://127.0.0.1:8080/"


def test_the_prod_stack_pages_for_critical_and_keeps_its_credentials_secret():
    project = Project.load(ROOT)
    stack = project.stack_config("prod")
    assert stack.secure_paths and all(p.startswith(KEY) for p in stack.secure_paths)
    config = parse_stack_config(stack.values, project="ai-platform", stack="prod", secret_keys=stack.secret_keys,
                                secure_paths=stack.secure_paths)
    alerts = config.observability.alerts
    types = {r.name: r.type for r in alerts.receivers}
    assert {types[r.receiver] for r in alerts.routes if r.severity == "critical"} == {"pagerduty"}
    assert types[alerts.default_receiver] == "slack"
    # Offline, the program sees placeholders: nothing real is committed.
    assert set(monitoring.alertmanager_credentials(alerts).values()) == {"[secret]"}
