"""The demo's detector: Snort when it is installed and loads the shipped configuration, else the
built-in port-scan detector (the caller's fallback).
"""

from __future__ import annotations

from pathlib import Path


def snort_setup(workdir: Path) -> tuple[tuple[str, list[tuple[str, str]], dict[str, str]] | None, str]:
    """((consumer command for tzspd --exec, alert files to follow, environment), description of the
    detector and why), or (None, why the built-in detector runs). Snort 3 first, then Snort 2: the
    first whose shipped configuration loads here (``snort -T``)."""
    from bridge import snort_engines

    found = snort_engines.find_snorts()
    if not found:
        names = ", ".join(snort_engines.PATH_NAMES)
        return None, f"the built-in port-scan detector (no Snort: none of {names} on PATH, $SNORT3/$SNORT2 unset)"
    refused = []
    for major in sorted(found, reverse=True):
        snort = found[major]
        env = snort_engines.snort_env(snort)
        config = snort_engines.prepare_config(snort, workdir)
        loads, last = snort_engines.check_config(snort, config, env)
        if not loads:
            refused.append(f"Snort {snort.version} ({snort.path}) found, but {config.name} does not load: {last[:160]}")
            continue
        logs = workdir / f"snort{major}"
        logs.mkdir(exist_ok=True)
        name, form = snort.alert_file()
        command = " ".join(snort.command(config, str(logs)))
        why = snort_engines.describe(snort, env)
        others = [f"Snort {other.version}" for other_major, other in found.items() if other_major != major]
        if others or refused:
            why += " (the newest engine whose configuration loads; also found: " + ", ".join(others) + ")"
        return (command, [(str(logs / name), form)], env), why
    for line in refused:
        print(f"   {line}")
    return None, "the built-in port-scan detector (no installed Snort loads the shipped configuration; see above)"
