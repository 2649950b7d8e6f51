"""The project's import graph, read with ``ast`` (nothing is imported), and the layering it must keep.

Every ``import`` and ``from … import`` counts, wherever it stands: at the top, inside a function,
or under ``if TYPE_CHECKING:``. A circle between modules, or an import from a lower layer into a
higher one, is a finding. docs/architecture.md explains the layers; ``LAYERS`` is that page's
table as data.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("plumbing", "tzsp_ips_data", "tzsp", "responder", "bridge")

# Lowest first: a unit may import its own modules and any unit of a lower rank, never one of a
# higher rank. Units of the same rank do not import each other either (they are independent).
# A module belongs to the longest unit that is a prefix of its dotted name.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("plumbing", "tzsp_ips_data"),  # sd_notify, the HTTP server, the state_dir lock; the shipped files
    ("tzsp",),  # the sensor: TZSP, pcap, tzspd, tzsp-replay
    ("responder.errors", "responder.events", "responder.config"),  # the responder's vocabulary
    ("responder.routeros", "responder.feed"),  # RouterOS language (pure); the feed of what happened
    ("responder.transport", "responder.ledger", "responder.sim.router"),
    ("responder.sync", "responder.provision", "responder.sim.script"),
    ("responder.degraded",),  # blocking from memory while the ledger cannot be written
    ("responder.responder", "responder.sim.wire"),
    ("responder.sim.server",),
    ("responder.sim.cli", "responder.sim"),  # the routeros-sim command; the package's front door
    ("responder",),  # the package docstring, and any module not listed above: it may import the responder
    ("bridge.events",),  # Alert, Decision: the bridge's vocabulary
    ("bridge.parsers", "bridge.config"),
    ("bridge.follow", "bridge.decide", "bridge.scan", "bridge.notify", "bridge.snort_engines"),
    ("bridge.pipeline", "bridge.watching", "bridge.check"),
    ("bridge.service", "bridge.demo"),  # snort-bridge run; the demo (the whole pipeline on loopback)
    ("bridge.cli",),  # the commands: they may call everything
    ("bridge",),  # the package docstring, and any module not listed above
)


@dataclass(frozen=True)
class Finding:
    importer: str
    imported: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}: {self.why}"


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> list[tuple[str, int]]:
    """The project modules that ``name`` imports, with the line of each import."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name in modules]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:  # from package import module
                    found.append((f"{target}.{alias.name}", node.lineno))
                elif target in modules:
                    found.append((target, node.lineno))
    return [(imported, line) for imported, line in dict.fromkeys(found) if imported != name]


def import_graph(root: Path = ROOT) -> dict[str, list[tuple[str, int]]]:
    modules = project_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def unit_of(module: str, layers: Iterable[Iterable[str]] = LAYERS) -> tuple[str, int] | None:
    """(unit, rank) of the longest unit that holds ``module``; None when no layer names it."""
    best = None
    for rank, units in enumerate(layers):
        for unit in units:
            if (module == unit or module.startswith(unit + ".")) and (best is None or len(unit) > len(best[0])):
                best = (unit, rank)
    return best


def layering_findings(graph: Mapping[str, list[tuple[str, int]]], layers=LAYERS) -> list[Finding]:
    findings = []
    for importer, imported_list in graph.items():
        mine = unit_of(importer, layers)
        if mine is None:
            findings.append(Finding(importer, "-", 0, "the module is in no layer of docs/architecture.md"))
            continue
        for imported, line in imported_list:
            theirs = unit_of(imported, layers)
            if theirs is None or theirs[0] == mine[0]:
                continue
            if theirs[1] > mine[1]:
                findings.append(Finding(importer, imported, line, f"{mine[0]} may not import the higher {theirs[0]}"))
            elif theirs[1] == mine[1]:
                findings.append(Finding(importer, imported, line, f"{mine[0]} and {theirs[0]} are independent"))
    return findings


def circles(graph: Mapping[str, list[tuple[str, int]]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    edges = {name: sorted({imported for imported, _ in imported_list}) for name, imported_list in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found
