"""The commented example configuration (`snort-bridge config example`): every key, its default, what it does.

Kept apart from bridge.config because it is text for people; tests check that parse_config accepts it.
"""

_EXAMPLE = """\
# tzsp-ips configuration: snort-bridge reads this file at start (--config FILE, else
# $TZSP_IPS_CONFIG, else /etc/tzsp-ips/config.toml) and refuses it, naming each bad key,
# when anything is wrong. Durations are RouterOS-style: "30s", "5m", "1d2h" or "00:05:00".

state_dir = "/var/lib/tzsp-ips"        # ledger, follower positions, pending queue

[policy]
min_priority = 1                       # block alerts with priority <= this (1 = "Priority 1")
portscan = true                        # block port-scan events (gid 122 and the built-in detector)
block_for = "5m"                       # address-list timeout on the routers
protected = ["192.168.0.0/16"]         # never blocked, on either end; IPv4 and IPv6 networks; your own
                                       # networks: list them in Snort's $HOME_NET too (home-net.conf)
                                       # (always protected besides: loopback, link-local, multicast,
                                       # unspecified, broadcast, the routers below and this host)
threshold = 1                          # alerts from one address ...
window = "60s"                         # ... within this window before it is blocked
include_sids = []                      # "gid:sid" acted on; empty = all
exclude_sids = []                      # "gid:sid" never acted on, e.g. ["1:2100498"]
attacker = { }                         # per "gid:sid": "src" (default) or "dst", e.g. { "1:1000200" = "dst" }
max_new_blocks_per_minute = 100        # flood guard: above this, stop blocking and say so
rollback = 0                           # when the guard trips, undo this many latest blocks
portscan_attribution = "evidence"      # Snort 3 port scans without the packet's direction (alert_fast,
                                       # syslog): "evidence" blocks only when the bridge can tell the
                                       # scanner from its victim; "src" trusts the source as Snort 2 does
block_client_sweeps = false            # a sweep of one port across hosts outside protected (a browser whose
                                       # web servers do not answer, a mail server, a monitoring probe) is a
                                       # client's traffic; true blocks it like any scan
standard_exclusions = true             # not acting on the priority-1 rules of public rule sets that fire
                                       # on ordinary traffic (bridge/decide/exclusions.py says why, each)
repeat_factor = 4                      # the n-th block of an address within remember_for lasts
max_block_for = "1w"                   #   base * repeat_factor^(n-1), at most max_block_for (1 = no escalation)
remember_for = "30d"                   # how long offences are remembered (the ledger keeps them)
block_for_rules = { }                  # base duration per "gid:sid", e.g. { "1:1000122" = "1h" }
block_for_networks = { }               # base per attacker network, e.g. { "203.0.113.0/24" = "1d" }; the
                                       # longest prefix wins, and a network wins over a rule, a rule over block_for

[[alerts]]                             # one table per followed file
path = "/var/log/snort/alert_json.txt" # Snort 3 alert_json carries dir/tcp_flags/icmp_type: best attribution
format = "json"                        # auto | fast | syslog | json | csv | eve

[[alerts]]
path = "/var/log/snort/alert_fast.txt"
format = "auto"

# Several sensors (README "Several sensors"): on the central host, one table per sensor file that
# rsyslog writes; a file that does not exist yet is followed as soon as it appears.
# [[alerts]]
# path = "/var/log/tzsp-ips/sensors/sensor1/alert_json.txt"
# format = "json"

[scan]                                 # built-in distinct-port detector (optional table)
ports = 15                             # distinct destination ports from one source ...
window = "10s"                         # ... within this window
low_port_weight = 1                    # ports below 1024 count this many times (psd-style; 1 = off)
syslog = "0.0.0.0:5514"                # optional: UDP listener for RouterOS firewall log lines
allow = []                             # senders the listener accepts; empty = the routers below
files = []                             # optional: files of RouterOS firewall log lines
routers = []                           # optional: [[routers]] names whose own firewall log is read over their connection

[http]                                 # optional: /metrics (Prometheus), /health, / (status page)
listen = "127.0.0.1:9470"              # beyond loopback only with token_file
# token_file = "/etc/tzsp-ips/http.token"  # mode 0600; then every request needs the token:
                                       # "Authorization: Bearer <token>", or open /?token=<token> once
silent_after = "10m"                   # /health: a problem when no alert line (or TZSP datagram) for this long
# tzspd = "127.0.0.1:9471"             # tzspd --metrics: its counters on the page, its silence in /health
provision_check = "10m"                # /health: each router's drop rules and logging as provisioned (false: off)
[notify]                               # optional: notifications through apprise (Telegram, Slack, Teams,
                                       # Matrix, ntfy, e-mail, JSON webhooks ...); `snort-bridge notify test`
urls_env = "TZSP_IPS_NOTIFY_URLS"     # environment variable holding apprise URLs (whitespace-separated),
# urls_file = "/etc/tzsp-ips/notify.urls"   # or a file of them, one per line, mode 0600 (they hold tokens)
events = ["block", "router_down", "router_up", "flood_guard", "sensor_silent", "state"]   # also: "unblock", and
                                       # "snort_restarted" with tzspd_metrics (the default then, when unset)
min_interval = "60s"                   # later events of a kind within this are sent as one digest
silent_after = "1h"                    # sensor_silent: no line from an [[alerts]] file for this long
# tzspd_metrics = ["127.0.0.1:9471"]   # snort_restarted: each sensor's tzspd --metrics, read every 15 s for
                                       # Snort restarts ("HOST:PORT" or "http://10.0.0.5:9471/metrics")

[[routers]]                            # one table per router
name = "core1"
host = "192.0.2.1"
port = 22                              # default 22; with transport = "api" 8728, or 8729 with tls
transport = "ssh"                      # ssh | api (RouterOS API: password login, no key_file)
user = "ips"
key_file = "/etc/tzsp-ips/id_ed25519"  # or password_file = "/etc/tzsp-ips/core1.password" (mode 0600),
                                       # or password_env = "CORE1_PASSWORD"; never a password here
known_hosts = "/etc/tzsp-ips/known_hosts"   # OpenSSH format, [host]:port entries for non-22 ports
list = "blacklist"                     # address list to add to
mode = "address-list"                  # address-list | script
script = "filter"                      # with mode = "script": `:global ip <addr>; /system script run filter`
block_in = "filter"                    # filter | raw: where provision puts the drop rules (raw = before connection tracking)
refresh_existing = true                # an address already listed gets its timeout re-armed
connect_timeout = "5s"
command_timeout = "5s"
keepalive = "15s"                      # SSH keepalive interval
reconcile_interval = "60s"             # how often the routers' lists are compared with the ledger
tls = false                            # transport = "api" only: API over TLS (port 8729)
# ca_file = "/etc/tzsp-ips/router-ca.pem"   # api + tls: CA that signed the router's certificate
# fingerprint = "sha256:..."                # api + tls: or pin the certificate's SHA-256
                                           # (neither: the pin `snort-bridge trust` writes to <known_hosts>.tls)

[[routers]]
name = "edge2"
host = "edge2.example.net"
port = 2222
user = "ips"
password_env = "EDGE2_PASSWORD"
known_hosts = "/etc/tzsp-ips/known_hosts"
list = "blacklist"
"""


def example_config() -> str:
    """The commented example TOML (what `snort-bridge config example` prints); parse_config accepts it."""
    return _EXAMPLE
