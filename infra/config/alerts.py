"""Who hears about alerts: Alertmanager's receivers and the routes to them (`observability.alerts`).

Each alert rule carries `team` and `severity` labels; a route matches one or both and names a receiver;
the first matching route wins, and whatever matches none goes to `defaultReceiver`. With no receiver
configured, alerts are visible in Alertmanager and reach nobody.

Credentials (a Slack webhook URL, a PagerDuty routing key, an SMTP password, a webhook's bearer token) are
only accepted as Pulumi secrets, i.e. `secure:` entries in the stack file set with
`pulumi config set --secret --path 'observability.alerts.receivers[0].routingKey' <value>`: a plain-text one
is a config error (see `credential_problems`). The program puts them in a Kubernetes Secret that
Alertmanager reads from files; no credential lands in the chart's values.
https://prometheus.io/docs/alerting/latest/configuration/
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, StrictBool, field_validator, model_validator

from infra.config.base import FrozenModel
from infra.config.errors import SUBKEY_MARK, Problem, join_path
from infra.config.fields import StrictStr

SEVERITIES = ("critical", "warning", "info")
# Alertmanager's own name for "drop it": the Watchdog heartbeat goes there.
RESERVED_RECEIVERS = ("null",)
# How a secret looks to a program that cannot decrypt it (the offline preview).
SECRET_PLACEHOLDER = "[secret]"
_NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_SMARTHOST = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _https_url(value: str, *, loopback_http: bool = False) -> str:
    url = urlsplit(value)
    if url.scheme == "https" and url.hostname:
        return value
    if loopback_http and url.scheme == "http" and _is_loopback(url.hostname):
        return value
    allowed = "an https:// URL (http:// only on loopback, for local tests)" if loopback_http else "an https:// URL"
    raise ValueError(f"must be {allowed}")


class _Receiver(FrozenModel):
    name: StrictStr = Field(description="Receiver name that routes refer to (lowercase DNS label).")
    send_resolved: StrictBool = Field(default=True, description="Also notify when the alert resolves.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > 63 or not _NAME.fullmatch(value):
            raise ValueError("must be a lowercase DNS label (a-z, 0-9 and '-', starting with a letter)")
        if value in RESERVED_RECEIVERS:
            raise ValueError(f"{value!r} is reserved (alerts routed there are dropped)")
        return value


class WebhookReceiver(_Receiver):
    """POSTs Alertmanager's JSON payload to a URL."""

    type: Literal["webhook"] = Field(description="webhook, slack, pagerduty or email.")
    url: StrictStr = Field(description="webhook: https:// endpoint (http:// only on loopback).")
    bearer_token: StrictStr | None = Field(
        default=None, description="webhook: secret, sent as `Authorization: Bearer`.")

    _url = field_validator("url")(lambda value: _https_url(value, loopback_http=True))


class SlackReceiver(_Receiver):
    """A Slack incoming webhook."""

    type: Literal["slack"]
    api_url: StrictStr = Field(description="slack: secret, the incoming webhook's https:// URL.")
    channel: StrictStr | None = Field(default=None, description="slack: channel, when the webhook may post to several.")

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        # The message names the key only: the value is a credential.
        if value != SECRET_PLACEHOLDER and not value.startswith("https://"):
            raise ValueError("must be an https:// URL (the Slack incoming webhook's)")
        return value


class PagerDutyReceiver(_Receiver):
    """A PagerDuty service, through its Events API v2 integration."""

    type: Literal["pagerduty"]
    routing_key: StrictStr = Field(
        min_length=1, description="pagerduty: secret, the Events API v2 integration's routing key.")


class EmailReceiver(_Receiver):
    """Mail through an SMTP relay (STARTTLS required)."""

    type: Literal["email"]
    to: StrictStr = Field(description="email: recipient address(es), comma-separated.")
    from_: StrictStr = Field(alias="from", description="email: sender address.")
    smarthost: StrictStr = Field(
        description="email: SMTP relay as host:port (STARTTLS), e.g. email-smtp.eu-west-1.amazonaws.com:587.")
    auth_username: StrictStr | None = Field(default=None, description="email: SMTP user; needs authPassword.")
    auth_password: StrictStr | None = Field(default=None, description="email: secret, the SMTP password.")

    @field_validator("to", "from_")
    @classmethod
    def _address(cls, value: str) -> str:
        if not all(_EMAIL.fullmatch(part.strip()) for part in value.split(",")):
            raise ValueError("must be an email address (several: comma-separated)")
        return value

    @field_validator("smarthost")
    @classmethod
    def _smarthost(cls, value: str) -> str:
        if not _SMARTHOST.fullmatch(value):
            raise ValueError("must be host:port, e.g. email-smtp.eu-west-1.amazonaws.com:587")
        return value

    @model_validator(mode="after")
    def _auth(self) -> EmailReceiver:
        if (self.auth_username is None) != (self.auth_password is None):
            raise ValueError(f"{SUBKEY_MARK}authPassword: authUsername and authPassword go together")
        return self


Receiver = Annotated[WebhookReceiver | SlackReceiver | PagerDutyReceiver | EmailReceiver,
                     Field(discriminator="type")]
RECEIVER_TYPES = ("webhook", "slack", "pagerduty", "email")
# The fields that hold credentials, per receiver type (Python name, stack-file name).
CREDENTIAL_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "webhook": (("bearer_token", "bearerToken"),),
    "slack": (("api_url", "apiUrl"),),
    "pagerduty": (("routing_key", "routingKey"),),
    "email": (("auth_password", "authPassword"),),
}


class AlertRoute(FrozenModel):
    """Alerts whose labels match go to `receiver`; the first matching route wins."""

    team: StrictStr | None = Field(default=None, description="The alert's `team` label (e.g. vision, platform).")
    severity: Literal["critical", "warning", "info"] | None = Field(
        default=None, description="The alert's `severity` label.")
    receiver: StrictStr = Field(description="Name of a receiver in `receivers`.")
    continue_: StrictBool = Field(default=False, alias="continue",
                                  description="Also try the routes after this one.")

    @model_validator(mode="after")
    def _matches_something(self) -> AlertRoute:
        if self.team is None and self.severity is None:
            raise ValueError("a route must match team, severity or both (use defaultReceiver for the rest)")
        return self


class AlertsConfig(FrozenModel):
    """Alertmanager's receivers and routes."""

    receivers: tuple[Receiver, ...] = Field(
        default=(), description="Where notifications go: {name, type, ...} with the keys of its type; "
                                "credentials only as secrets (`pulumi config set --secret --path`).")
    routes: tuple[AlertRoute, ...] = Field(
        default=(), description="{team, severity, receiver, continue}; the first match wins.")
    default_receiver: StrictStr | None = Field(
        default=None, description="Receiver of alerts no route matches; unset: they reach nobody.")

    @model_validator(mode="after")
    def _known_receivers(self) -> AlertsConfig:
        names = [r.name for r in self.receivers]
        problems = []
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(f"{SUBKEY_MARK}receivers: receiver names must be unique; repeated: {', '.join(repeated)}")
        allowed = ", ".join(names) or "none is configured"
        problems += [f"{SUBKEY_MARK}routes[{i}].receiver: unknown receiver {r.receiver!r}; receivers: {allowed}"
                     for i, r in enumerate(self.routes) if r.receiver not in names]
        if self.default_receiver is not None and self.default_receiver not in names:
            problems.append(f"{SUBKEY_MARK}defaultReceiver: unknown receiver {self.default_receiver!r}; "
                            f"receivers: {allowed}")
        if problems:
            # One at a time through pydantic; the first is the one to fix first.
            raise ValueError(problems[0])
        return self


def credentials(alerts: AlertsConfig) -> dict[tuple[int, str], str]:
    """Every credential set, keyed by (receiver index, stack-file field name)."""
    found = {}
    for index, receiver in enumerate(alerts.receivers):
        for field, key in CREDENTIAL_FIELDS[receiver.type]:
            value = getattr(receiver, field)
            if value is not None:
                found[(index, key)] = value
    return found


def credential_problems(alerts: AlertsConfig, key: str, is_secret: Callable[[str], bool]) -> list[Problem]:
    """A problem for each credential that is not a Pulumi secret; `key` is the alerts' config path
    (`ai-platform:observability.alerts`), `is_secret(path)` tells whether the value at a path is one."""
    problems = []
    for (index, field) in credentials(alerts):
        path = join_path(key, ["receivers", index, field])
        if not is_secret(path):
            setting = path.split(":", 1)[1]
            # The value is not echoed: it is a credential, and the error lands in CI logs.
            problems.append(Problem(path, "a credential must be a Pulumi secret: set it with "
                                          f"`pulumi config set --secret --path '{setting}' <value>`",
                                    "(plain text, not shown)"))
    return problems
