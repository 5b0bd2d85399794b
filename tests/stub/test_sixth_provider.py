"""A sixth provider from three files and one registry line: the stub "acme" gets every suite
parametrized over the kinds, in a pytest run of its own with its registry line added
(`tests/stub/registry.py`), so the parametrize lists are built with it from the start."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The shared suites a read-only provider of contacts and companies must pass; the run may
# hold more (every test parametrized with acme), never fewer.
SUITES = {
    "test_providers.py::test_every_registry_agrees",
    "test_providers.py::test_every_kind_has_its_test_knowledge",
    "test_id_formats.py::test_the_emulators_ids_are_valid_and_nothing_else_is",
    "test_id_formats.py::test_reads_of_a_forged_id_are_not_found_unsent",
    "test_id_formats.py::test_valid_ids_are_plain_ascii_and_travel_unchanged",
    "test_stack_reads.py::test_walks_both_ways_equal_the_emulator_data",
    "test_stack_reads.py::test_windows_from_any_cursor_follow_the_relay_spec",
    "test_stack_reads.py::test_node_and_nodes_round_trip",
    "test_stack_reads.py::test_relationships_resolve_or_say_unsupported",
    "test_stack_reads.py::test_filters_keep_what_the_predicate_keeps_or_are_refused",
    "test_stack_reads.py::test_orders_sort_or_are_refused",
}


def test_the_shared_suites_pass_on_a_sixth_provider() -> None:
    done = subprocess.run(
        [
            *(
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "tests.stub.registry",
                "-p",
                "no:cacheprovider",
            ),
            *("-m", "not integration", "-q", "-rA", "tests/unit"),
        ],
        cwd=ROOT,
        # The run is this one's child, not one of its workers or measured processes.
        env={k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    passed = re.findall(r"^PASSED tests/unit/(\S+?)\[(.*)\]$", done.stdout, re.M)
    assert all("acme" in params for _, params in passed)
    assert {test for test, _ in passed} >= SUITES, done.stdout[-3000:]
