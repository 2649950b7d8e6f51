"""Imports flow one way: no circles, and no import from a lower layer into a higher one.

The layers are docs/architecture.md's table (``import_layers.LAYERS``). The checker itself is
tested on small trees made here, so a broken checker cannot pass the project by finding nothing.
"""

from __future__ import annotations

import textwrap

from import_layers import LAYERS, circles, import_graph, layering_findings, project_modules


def test_no_import_circles():
    assert len(project_modules()) > 100  # the walk found the project
    assert circles(import_graph()) == []


def test_imports_keep_the_layers():
    assert [str(finding) for finding in layering_findings(import_graph())] == []


def make_tree(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


TREE = {
    "bridge/__init__.py": "",
    "bridge/events.py": "",
    "bridge/decide/__init__.py": "",
    "bridge/service/__init__.py": "",
    "bridge/service/service.py": "from bridge.decide import policy\n",
    "plumbing/__init__.py": "",
    "tzsp/__init__.py": "",
    "responder/__init__.py": "",
}


def test_an_upward_import_is_found_wherever_it_stands(tmp_path):
    for where in (
        "from bridge.service.service import run\n",  # at the top
        "def f():\n    from bridge.service import service\n",  # inside a function
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import bridge.service.service\n",
        "from ..service import service\n",  # relative
    ):
        make_tree(tmp_path, {**TREE, "bridge/decide/policy.py": where})
        findings = layering_findings(import_graph(tmp_path))
        assert [(f.importer, f.imported) for f in findings] == [("bridge.decide.policy", "bridge.service.service")], (
            where
        )
        assert "may not import the higher bridge.service" in str(findings[0])


def test_a_downward_import_is_fine_and_a_sibling_import_is_not(tmp_path):
    make_tree(tmp_path, {**TREE, "bridge/decide/policy.py": "from bridge import events\n"})
    assert layering_findings(import_graph(tmp_path)) == []
    make_tree(
        tmp_path, {**TREE, "bridge/decide/policy.py": "", "bridge/scan/__init__.py": "import bridge.decide.policy\n"}
    )
    assert [str(f) for f in layering_findings(import_graph(tmp_path))] == [
        "bridge.scan:1 imports bridge.decide.policy: bridge.scan and bridge.decide are independent"
    ]


def test_a_circle_is_found_also_through_a_function_local_import(tmp_path):
    make_tree(
        tmp_path,
        {
            **TREE,
            "bridge/decide/policy.py": "from bridge.decide.durations import x\n",
            "bridge/decide/durations.py": "def f():\n    from bridge.decide import attribution\n",
            "bridge/decide/attribution.py": "from . import policy\n",
        },
    )
    assert circles(import_graph(tmp_path)) == [
        ["bridge.decide.attribution", "bridge.decide.durations", "bridge.decide.policy"]
    ]


def test_the_layers_name_each_unit_once():
    units = [unit for layer in LAYERS for unit in layer]
    assert len(units) == len(set(units))
