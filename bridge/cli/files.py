"""`snort-bridge files`: the files tzsp-ips ships and where they go; `files install` puts them there.
`snort-bridge demo`: the whole IPS on loopback, from the installed package.
"""

from __future__ import annotations

import argparse
import grp
import os
import shutil
import subprocess
import sys
import sysconfig

from tzsp_ips_data import CATALOGUE, CONFIG_TARGET, GROUPS, INSTALL_PREFIX, data_root
from tzsp_ips_data.install import INSTALL, MANIFEST, NEW, apply, plan, read_state, selected

ROLE_GROUPS = [name for name in GROUPS if name != "core"]
SERVICE_USER = "tzsp-ips"
SYSUSERS = "/usr/lib/sysusers.d/tzsp-ips.conf"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "files",
        help="list the shipped files (Snort configurations, units, …) and where they go; `files install`",
        description="List each file tzsp-ips ships and where the README puts it. `files install` puts them there.",
    )
    parser.set_defaults(func=list_files)
    actions = parser.add_subparsers(dest="files_command", metavar="ACTION")
    install = actions.add_parser(
        "install",
        help="install the shipped files (never overwriting a file changed here: FILE.new beside it)",
        description=(
            "Install the Snort configurations, systemd units, sysusers and sysctl files and /etc/default/tzspd, "
            f"and {CONFIG_TARGET} from the example when absent. A file changed here is kept and the new version "
            f"written beside it as FILE.new (checksums of what was installed: {MANIFEST}). The units start the "
            "commands from the scripts directory of this installation."
        ),
    )
    install.add_argument("--root", default="/", metavar="DIR", help="install under DIR instead of / (default: /)")
    install.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    install.add_argument(
        "--with",
        dest="roles",
        action="append",
        default=[],
        choices=ROLE_GROUPS,
        help="also the rsyslog files of a role: " + "; ".join(f"{name}: {GROUPS[name]}" for name in ROLE_GROUPS),
    )
    install.add_argument(
        "--bin-dir",
        default=sysconfig.get_path("scripts"),
        metavar="DIR",
        help="where the units find tzspd and snort-bridge (default: this installation's, %(default)s)",
    )
    install.set_defaults(func=install_files)

    demo = subparsers.add_parser(
        "demo", help="run the whole IPS on loopback: a replayed capture, two simulated routers, the verdict"
    )
    demo.set_defaults(func=run_demo)


def list_files(args: argparse.Namespace) -> int:
    print(f"shipped files (in {data_root()}), where `snort-bridge files install` puts them:")
    width = max(len(item.source) for item in CATALOGUE)
    for item in CATALOGUE:
        role = "" if item.group == "core" else f"   (--with {item.group})"
        print(f"  {item.source:<{width}}  ->  {item.target}{role}")
    print(f"  {'(snort-bridge config example)':<{width}}  ->  {CONFIG_TARGET}   (only when absent)")
    print(f"documented install location: a virtual environment at {INSTALL_PREFIX} (units: {INSTALL_PREFIX}/bin)")
    return 0


def install_files(args: argparse.Namespace) -> int:
    from bridge.config import example_config

    items = selected(args.roles)
    shipped, existing, recorded = read_state(items, args.root)
    actions = plan(items, shipped, existing, recorded, args.bin_dir, example_config().encode())
    for action in actions:
        print(action.describe(args.dry_run))
    if args.dry_run:
        return 0
    try:
        apply(actions, args.root, recorded)
    except OSError as exc:
        print(f"snort-bridge files install: {exc.filename or args.root}: {exc.strerror or exc}", file=sys.stderr)
        print("(as root, or with --root DIR to install under a directory of your own)", file=sys.stderr)
        return 1
    if args.root == "/" and os.geteuid() == 0:
        _create_service_user(actions)
    kept = [action for action in actions if action.verdict == NEW]
    if kept:
        print(f"{len(kept)} file(s) changed here kept; compare each with its .new and merge (then remove the .new)")
    if args.root == "/":
        print(
            "next: systemctl restart systemd-sysctl; systemctl daemon-reload; "
            f"edit {CONFIG_TARGET} and /etc/default/tzspd; then systemctl enable --now tzspd snort-bridge"
        )
    return 0


def _create_service_user(actions) -> None:
    """As a package's postinst would: the service user now, and a configuration file just created given
    to its group (the services read it; nobody else may)."""
    if shutil.which("systemd-sysusers"):
        subprocess.run(["systemd-sysusers", SYSUSERS], check=False, timeout=60)
    try:
        group = grp.getgrnam(SERVICE_USER).gr_gid
    except KeyError:
        print(f"no group {SERVICE_USER}: run systemd-sysusers, then chgrp {SERVICE_USER} {CONFIG_TARGET}")
        return
    if any(action.target == CONFIG_TARGET and action.verdict == INSTALL for action in actions):
        os.chown(CONFIG_TARGET, 0, group)


def run_demo(args: argparse.Namespace) -> int:
    from bridge import demo

    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.stdout.reconfigure(line_buffering=True)
    return demo.main()
