"""The monitoring's settings (jh_monitoring): Prometheus, the node exporter and Alertmanager from the
distribution on the hub server, and where alerts go. Its docstring and fields' descriptions are the
settings reference's text (docs/settings.md)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, StrictBool, StrictInt, StrictStr, model_validator

from tasks.settings.constants import DOMAIN
from tasks.settings.network import EmailAddress, Url
from tasks.settings.parts import Strict
from tasks.settings.types import Kind, whole

SMARTHOST = re.compile(rf"(?P<host>{DOMAIN.pattern}):(?P<port>[1-9][0-9]{{0,4}})")
Smarthost = Annotated[
    StrictStr, whole(SMARTHOST, "must be HOST:PORT, a DNS name or IPv4 address and a port"), Kind("host:port")
]


class Monitoring(Strict):
    """Prometheus, Alertmanager and the node exporter (the distribution's) on the hub server, all on
    loopback: the host, the hub (`/hub/metrics`, read with a token of the scope `read:metrics` alone),
    each user's server (memory now and at its peak, CPU time, OOM kills), the certificate, the last
    nightly backup; in a cluster each node too (its node exporter on its cluster address, for the
    hub's Prometheus alone) and Slurm's nodes, jobs and queue; alert rules for what needs a person
    (docs/operations.md#alerts says what to do for each), sent to a webhook and/or by e-mail through
    a smarthost, and to `jh_notify_command` if there is one (a run per alert, its one argument
    `alert NAME STATUS on HOST: SUMMARY`)."""

    webhook_url: Url | None = Field(
        None,
        description="Alertmanager posts firing and resolved alerts here (its webhook JSON).",
        examples=["https://chat.example.org/hooks/jupyterhub"],
    )
    email_to: list[EmailAddress] = Field([], description="Who gets alerts by e-mail (needs `smarthost`).")
    email_from: EmailAddress | None = Field(None, description="The alerts' sender address.")
    smarthost: Smarthost | None = Field(
        None, description="The mail relay Alertmanager sends through (no login), e.g. `mail.example.org:25`."
    )
    smarthost_tls: StrictBool = Field(True, description="Require STARTTLS from the smarthost.")
    retention_days: StrictInt = Field(90, ge=1, le=3650, description="How long Prometheus keeps its data.")

    @model_validator(mode="after")
    def _mail_has_a_relay(self) -> Monitoring:
        if self.email_to and not (self.smarthost and self.email_from):
            raise ValueError("email_to needs smarthost and email_from")
        return self
