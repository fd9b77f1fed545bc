"""deploy/prometheus/emberwatch-rules.yml: Prometheus alert rules over Emberwatch's metrics.

No Prometheus runs in CI, so these tests read the file: it parses, each rule has what
Alertmanager routes on, and each expression names only metrics Emberwatch exposes (or
Prometheus' own ``up``). Where ``promtool`` is installed, it checks the rules too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics_core import Metric

from emberwatch import metrics

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "emberwatch-rules.yml"
PROMETHEUS_OWN = {"up"}
# Names in expressions that are PromQL (functions, keywords), not metrics.
PROMQL_WORDS = {"time", "max", "sum", "by", "on", "or", "unless", "increase", "and"}
EXPECTED = {
    "EmberwatchSourceStale",
    "EmberwatchSourceNeverSucceeded",
    "EmberwatchDeliveriesFailing",
    "EmberwatchChannelBroken",
    "EmberwatchNodeNotReady",
    "EmberwatchOutboxBacklog",
}


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _exposed_names() -> set[str]:
    """Every sample name the registry can expose, with the suffixes each type adds."""
    suffixes = {
        "counter": ("_total", "_created"),
        "info": ("_info",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
    }
    names: set[str] = set()
    family: Metric
    for family in metrics.REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
    return names


def _metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    words = set(re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_]*\b", without_ranges))
    grouping = set(re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", without_ranges))
    labels = {label.strip() for group in grouping for label in group.split(",")}
    return words - PROMQL_WORDS - labels


def test_the_rules_file_holds_the_expected_alerts():
    assert {rule["alert"] for rule in _rules()} == EXPECTED


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_each_rule_has_a_severity_a_summary_and_balanced_brackets(rule):
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"]
    expr = rule["expr"]
    for opening, closing in ("()", "[]", "{}"):
        assert expr.count(opening) == expr.count(closing), expr
    if "for" in rule:
        assert re.fullmatch(r"\d+[smh]", rule["for"])


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_each_rule_names_only_metrics_that_exist(rule):
    names = _metric_names(rule["expr"])
    assert names, rule["expr"]
    missing = names - _exposed_names() - PROMETHEUS_OWN
    assert not missing, f"{rule['alert']} names metrics Emberwatch does not expose: {missing}"


def test_the_readme_points_at_the_rules():
    readme = (RULES.parents[2] / "README.md").read_text(encoding="utf-8")
    assert "deploy/prometheus/emberwatch-rules.yml" in readme


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules():
    checked = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
