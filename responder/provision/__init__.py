"""Provisioning a router for tzsp-ips: the items it must hold, the script that makes them so (run
it twice, nothing changes the second time), and the check of a router against them.

Pure except apply.py, which logs in over SSH. May import responder.routeros and
responder.transport; never bridge.

  plan.py    ProvisionPlan and the checks on its inputs
  items.py   the desired items as data
  render.py  the idempotent RouterOS script, multi-line for people, one line per block for SSH exec
  drift.py   what the router printed versus the items: drift with its fix, and what a run changed
  apply.py   --apply and --check over SSH
"""

from responder.provision.plan import (
    ProvisionError,
    ProvisionPlan,
    PublicKey,
    parse_public_key,
    parse_this_host,
    password_source,
    syslog_port_of,
)
from responder.provision.render import exec_lines, render_provision

__all__ = [
    "ProvisionError",
    "ProvisionPlan",
    "PublicKey",
    "exec_lines",
    "parse_public_key",
    "parse_this_host",
    "password_source",
    "render_provision",
    "syslog_port_of",
]
