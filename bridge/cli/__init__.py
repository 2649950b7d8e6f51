"""snort-bridge: the command line frame.

Subcommands live in their own modules. Each module in ``SUBCOMMAND_MODULES`` exposes
``register(subparsers)``, which adds its parsers and sets ``func`` (called with the parsed
arguments, returns the exit status). Adding a subcommand = a module with ``register`` and one
line in that list; no switch to edit. Every subcommand, also nested ones, gets ``--config FILE``
(else $TZSP_IPS_CONFIG, else /etc/tzsp-ips/config.toml).

Exit status: 0 fine, 1 the command failed, 2 bad usage or a bad configuration file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from bridge.config import CONFIG_ENV, Config, ConfigError, default_config_path, example_config
from bridge.config.load import load_config

# Modules that register subcommands. A module missing from this installation is skipped (its
# commands show as placeholders, below); an error inside one that is present is not hidden.
SUBCOMMAND_MODULES = (
    "bridge.cli.check",  # check
    "bridge.cli.routers",  # block, unblock, list, routers, trust
    "bridge.cli.provision",  # provision
    "bridge.cli.run",  # run
    "bridge.cli.scan",  # scan
    "bridge.cli.notify",  # notify test
    "bridge.cli.ledger",  # ledger check, ledger rebuild-from-routers
    "bridge.cli.files",  # files, files install, demo
    "bridge.cli.health",  # health
)

# Shown in --help until the module that provides them is installed.
PLACEHOLDERS = {
    "run": ("follow the alerts and block on the routers", "bridge.cli.run"),
    "scan": ("detect port scans in a packet stream (--pcap FILE|-)", "bridge.cli.scan"),
    "block": ("block ADDR on every router [--for DUR] [--reason TEXT]", "bridge.cli.routers"),
    "unblock": ("remove ADDR from every router", "bridge.cli.routers"),
    "list": ("list current blocks [--json]", "bridge.cli.routers"),
    "routers": ("show the routers and whether they are reachable", "bridge.cli.routers"),
    "trust": ("record a router's SSH host key [--yes]", "bridge.cli.routers"),
    "provision": ("set a router up: print, --apply or --check the RouterOS script", "bridge.cli.provision"),
    "notify": ("notifications: `notify test` sends a test message to every URL", "bridge.cli.notify"),
    "ledger": ("check the ledger, or rebuild it from the routers", "bridge.cli.ledger"),
}

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def config_path(args: argparse.Namespace) -> str:
    """The configuration file this invocation uses: --config, $TZSP_IPS_CONFIG, or the default."""
    return getattr(args, "config", None) or default_config_path()


def config_explicit(args: argparse.Namespace) -> bool:
    """Was a configuration file named (--config or the environment), not just the default path?"""
    return bool(getattr(args, "config", None) or os.environ.get(CONFIG_ENV))


def load_for(args: argparse.Namespace, optional: bool = False) -> tuple[Config, str | None]:
    """The configuration for a subcommand, and a note when built-in defaults stand in.

    With ``optional``, a missing default file gives the defaults (and a note saying so); a file
    that was named but cannot be read, or is bad, raises ConfigError either way.
    """
    path = config_path(args)
    if optional and not config_explicit(args) and not os.path.exists(path):
        return Config(), f"no configuration file ({path} does not exist): using the built-in defaults"
    return load_config(path), None


def build_parser(modules: Sequence[str] = SUBCOMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snort-bridge",
        description="Follow Snort's alerts, decide what to block, and block it on MikroTik routers.",
    )
    parser.add_argument(
        "--config", metavar="FILE", help=f"configuration file (default: ${CONFIG_ENV} or /etc/tzsp-ips/config.toml)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_config(subparsers)
    for name in modules:
        module = _import_optional(name)
        if module is not None and hasattr(module, "register"):
            module.register(subparsers)
    for name, (summary, provider) in PLACEHOLDERS.items():
        if name not in subparsers.choices:
            _placeholder(subparsers, name, summary, provider)
    _add_config_option(parser, top=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(func(args) or 0)
    except ConfigError as exc:
        print(format_config_error(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `snort-bridge check ... | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def format_config_error(exc: ConfigError) -> str:
    where = exc.path or "configuration"
    lines = [f"snort-bridge: {where} is not usable:"]
    lines += [f"  {problem}" for problem in exc.problems]
    return "\n".join(lines)


# -- `snort-bridge config example | check` ------------------------------------------------------


def register_config(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="print an example configuration, or check one")
    actions = parser.add_subparsers(dest="config_command", metavar="ACTION")
    example = actions.add_parser("example", help="print a commented example configuration with every key")
    example.set_defaults(func=_config_example)
    check = actions.add_parser("check", help="check the configuration file and say what it sets up")
    check.set_defaults(func=_config_check)
    parser.set_defaults(func=lambda args: _usage(parser))


def _config_example(args: argparse.Namespace) -> int:
    sys.stdout.write(example_config())
    return EXIT_OK


def describe_durations(policy) -> str:
    """One line: escalation, cap, memory, and how many per-rule / per-network durations."""
    from responder.routeros.duration import format_duration as fmt

    escalation = (
        "no escalation (repeat_factor 1)"
        if policy.repeat_factor == 1
        else f"repeat offenders x{policy.repeat_factor:g} per block within {fmt(policy.remember_for)}"
    )
    return (
        f"{escalation}, at most {fmt(policy.max_block_for)}; {len(policy.block_for_rules)} per rule, "
        f"{len(policy.block_for_networks)} per network"
    )


def _config_check(args: argparse.Namespace) -> int:
    config, _ = load_for(args)
    policy = config.policy
    print(f"{config.path}: OK")
    print(f"  alerts:  {len(config.alerts)} file(s)" + "".join(f"\n    {a.path} ({a.format})" for a in config.alerts))
    print(
        f"  routers: {len(config.routers)}"
        + "".join(f"\n    {r.name} {r.host}:{r.port} ({r.transport}, list {r.list})" for r in config.routers)
    )
    print(
        f"  policy:  priority <= {policy.min_priority}, port scans {'on' if policy.portscan else 'off'}, "
        f"block for {policy.block_for:g}s, threshold {policy.threshold} in {policy.window:g}s, "
        f"protected {', '.join(map(str, policy.protected)) or 'none'}"
    )
    print(f"  scan detector: {'on' if config.scan else 'off'}; state in {config.state_dir}")
    print(f"  durations: {describe_durations(policy)}")
    notify = config.notify
    if notify is not None:
        where = f"URLs in {notify.urls_file}" if notify.urls_file else f"URLs in ${notify.urls_env}"
        print(
            f"  notify:  {', '.join(notify.events)}; digests every {notify.min_interval:g}s; {where} "
            "(`snort-bridge notify test` tries them)"
        )
        if notify.tzspd_metrics:
            print(f"  tzspd metrics (snort_restarted): {', '.join(notify.tzspd_metrics)}")
    return EXIT_OK


# -- plumbing ---------------------------------------------------------------------------------


def _import_optional(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name or (exc.name and name.startswith(exc.name + ".")):
            return None  # not part of this installation
        raise


def _placeholder(subparsers: argparse._SubParsersAction, name: str, summary: str, provider: str) -> None:
    parser = subparsers.add_parser(name, help=f"{summary} [not available: needs {provider}]", add_help=True)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def unavailable(args: argparse.Namespace) -> int:
        print(
            f"snort-bridge {name}: not available in this installation (module {provider} is missing)", file=sys.stderr
        )
        return EXIT_USAGE

    parser.set_defaults(func=unavailable)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _add_config_option(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """Give ``parser`` and every nested subcommand parser a --config option."""
    if not top:
        try:
            parser.add_argument(
                "--config",
                metavar="FILE",
                default=argparse.SUPPRESS,  # don't overwrite a --config given before the subcommand
                help=f"configuration file (default: ${CONFIG_ENV} or /etc/tzsp-ips/config.toml)",
            )
        except argparse.ArgumentError:
            pass  # the module added its own
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in _unique(action.choices.values()):
                _add_config_option(child)


def _unique(parsers) -> list[argparse.ArgumentParser]:
    seen, result = set(), []
    for parser in parsers:  # aliases map several names to one parser
        if id(parser) not in seen:
            seen.add(id(parser))
            result.append(parser)
    return result
