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
from tzsp_ips_data.install import MANIFEST, NEW, apply, plan, read_state, selected

ROLE_GROUPS = [name for name in GROUPS if name != "core"]


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
    on_this_system = args.root == "/" and os.geteuid() == 0
    if on_this_system and shutil.which("systemd-sysusers"):
        # as a package's postinst would: the service user exists before the configuration is given to its group
        subprocess.run(["systemd-sysusers", "/usr/lib/sysusers.d/tzsp-ips.conf"], check=False, timeout=60)
    apply(actions, args.root, recorded, _service_group() if on_this_system else None)
    kept = [action for action in actions if action.verdict == NEW]
    if kept:
        print(f"{len(kept)} file(s) changed here kept; compare each with its .new and merge (then remove the .new)")
    if args.root == "/":
        print(
            "next: sysctl --system; systemctl daemon-reload; "
            f"edit {CONFIG_TARGET} and /etc/default/tzspd; then systemctl enable --now tzspd snort-bridge"
        )
    return 0


def _service_group() -> int | None:
    """The service user's group, for the configuration file."""
    try:
        return grp.getgrnam("tzsp-ips").gr_gid
    except KeyError:
        return None


def run_demo(args: argparse.Namespace) -> int:
    from bridge import demo

    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.stdout.reconfigure(line_buffering=True)
    return demo.main()
