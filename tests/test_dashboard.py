"""The Grafana dashboard queries only metrics otelkit emits, under the names Prometheus gives them.

otelkit's instruments are found by parsing ``src/otelkit`` (every ``create_counter``,
``create_histogram``, ... call with its name and unit), never copied by hand. Their Prometheus
names follow the translation Prometheus 3 applies to OTLP by default
(``otlp.translation_strategy: UnderscoreEscapingWithSuffixes``, implemented by
prometheus/otlptranslator), re-implemented below. Every PromQL expression of every panel is
checked by the real ``promtool check rules`` as a recording rule.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src/otelkit"
DASHBOARD = ROOT / "grafana/dashboards/otelkit.json"

# Instrument factories of the OpenTelemetry metrics API -> Prometheus metric type.
_FACTORIES = {
    "create_counter": "counter",
    "create_observable_counter": "counter",
    "create_up_down_counter": "gauge",  # a non-monotonic sum is a gauge in Prometheus
    "create_observable_up_down_counter": "gauge",
    "create_gauge": "gauge",
    "create_observable_gauge": "gauge",
    "create_histogram": "histogram",
}
# _sdk.py's self-check creates a throwaway counter on a private provider; nothing exports it.
_NOT_EXPORTED = {"_sdk.py"}  # and the seam package otelkit/_sdk/ (its self-checks)

# prometheus/otlptranslator unit_namer.go / metric_namer.go
_UNITS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes",
    "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes", "KBy": "kilobytes",
    "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes", "m": "meters", "V": "volts",
    "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius", "Hz": "hertz",
    "1": "", "%": "percent",
}  # fmt: skip
_PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}  # fmt: skip
_INVALID = re.compile(r"[^a-zA-Z0-9:]+")

# Labels that come from the resource or the histogram itself, not from an attribute.
_RESOURCE_LABELS = {"job", "instance", "le"}


@dataclass(frozen=True)
class Instrument:
    name: str
    unit: str
    kind: str  # counter, gauge, histogram
    module: Path


def _unit_suffixes(unit: str) -> tuple[str, str]:
    main, _, per = (part.strip() for part in unit.partition("/"))
    main_suffix = "" if not main or "{" in main or "}" in main else _UNITS.get(main, main)
    per_suffix = ""
    if per and "{" not in per and "}" not in per:
        per_suffix = "per_" + _PER_UNITS.get(per, per)
    clean = [_INVALID.sub("_", s).strip("_") for s in (main_suffix, per_suffix)]
    return clean[0], clean[1]


def prometheus_name(name: str, unit: str, kind: str) -> str:
    """Prometheus 3's name for an OTLP metric (UnderscoreEscapingWithSuffixes)."""
    tokens = [t for t in _INVALID.split(name) if t]
    main, per = _unit_suffixes(unit)
    if main and main not in tokens:
        tokens.append(main)
    if per and per.removeprefix("per_") not in tokens:
        tokens.append(per)
    if kind == "counter":
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and kind == "gauge":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    joined = "_".join(tokens)
    return "_" + joined if joined[:1].isdigit() else joined


def prometheus_label(attribute: str) -> str:
    """Prometheus's label name for an attribute key (underscore escaping)."""
    label = re.sub(r"[^a-zA-Z0-9_]", "_", attribute)
    return "_" + label if label[:1].isdigit() else label


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        # Cases of prometheus/otlptranslator's metric_namer_test.go
        # (UTF8Allowed=false, WithMetricSuffixes=true: Prometheus 3's default).
        ("requests", "", "counter", "requests_total"),
        ("requests_total", "", "counter", "requests_total"),
        ("cpu_usage", "1", "gauge", "cpu_usage_ratio"),
        ("items", "1", "counter", "items_total"),
        ("throughput", "By/s", "gauge", "throughput_bytes_per_second"),
        # otelkit's shapes: dotted names, annotation units, a unit already in the name.
        ("otelkit.job.transitions", "{transition}", "counter", "otelkit_job_transitions_total"),
        ("otelkit.job.queue_wait", "s", "histogram", "otelkit_job_queue_wait_seconds"),
        ("queue.wait.seconds", "s", "histogram", "queue_wait_seconds"),
    ],
)
def test_the_translation_matches_prometheus(name: str, unit: str, kind: str, expected: str) -> None:
    assert prometheus_name(name, unit, kind) == expected


def test_attribute_keys_become_underscored_labels() -> None:
    assert prometheus_label("error.type") == "error_type"
    assert prometheus_label("otelkit.relay.signal") == "otelkit_relay_signal"


def _constants(tree: ast.Module) -> dict[str, str]:
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _string(node: ast.expr, constants: dict[str, str], where: str) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    raise AssertionError(f"{where}: instrument name or unit is not a literal: {ast.dump(node)}")


def otelkit_instruments() -> list[Instrument]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name in _NOT_EXPORTED or "_sdk" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _FACTORIES
            ):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            name_node = (
                node.args[0]
                if node.args
                else next(k.value for k in node.keywords if k.arg == "name")
            )
            unit_node = next((k.value for k in node.keywords if k.arg == "unit"), None)
            unit = "" if unit_node is None else _string(unit_node, constants, where)
            found.append(
                Instrument(
                    _string(name_node, constants, where), unit, _FACTORIES[node.func.attr], path
                )
            )
    return found


def emitted_series() -> dict[str, Instrument]:
    """Every Prometheus series name otelkit's instruments produce -> its instrument."""
    series = {}
    for instrument in otelkit_instruments():
        base = prometheus_name(instrument.name, instrument.unit, instrument.kind)
        if instrument.kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                series[base + suffix] = instrument
        else:
            series[base] = instrument
    return series


def test_the_instrument_scan_finds_every_capability() -> None:
    names = {i.name for i in otelkit_instruments()}
    # One known instrument per capability: a scan that finds nothing cannot pass.
    assert {
        "otelkit.job.transitions",
        "otelkit.coalesce.suppressed",  # created through a module constant
        "otelkit.relay.records",
        "otelkit.export.dropped",
        "otelkit.cache.requests",
        "messaging.process.duration",
    } <= names
    assert all(n.startswith(("otelkit.", "messaging.")) for n in names), names


# ---- the dashboard ------------------------------------------------------------------------
_GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", '"$job"': '".*"'}
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan",
}  # fmt: skip


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return [p for p in panels if p.get("type") != "row"]


def _expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in _GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: unknown Grafana variable in {expr}"
            found.append((f"{panel['title']} [{target['refId']}]", expr))
    return found


def parse_selectors(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) a PromQL expression refers to."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", without_strings))
    for clause in re.findall(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", without_strings
    ):
        labels |= {name.strip() for name in clause.split(",") if name.strip()}
    stripped = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", without_strings
    )
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", stripped)
    metrics = {
        match.group(1)
        for match in re.finditer(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", stripped)
        if match.group(1).lower() not in _KEYWORDS
    }
    return metrics, labels


def test_the_selector_parser_sees_metrics_and_labels() -> None:
    metrics, labels = parse_selectors(
        'histogram_quantile(0.9, sum by (le, reason) (rate(a_bucket{job=~".*", x!="y"}[5m])))'
        " / on (job) b_total"
    )
    assert metrics == {"a_bucket", "b_total"}
    assert labels == {"le", "reason", "job", "x"}


def test_every_panel_queries_only_metrics_otelkit_emits() -> None:
    series = emitted_series()
    expressions = _expressions()
    assert expressions
    for where, expr in expressions:
        metrics, _ = parse_selectors(expr)
        assert metrics, f"{where}: no metric found in {expr}"
        unknown = metrics - set(series)
        assert not unknown, f"{where}: {sorted(unknown)} are not emitted by otelkit"


def test_every_label_a_panel_uses_is_an_attribute_of_that_metric_module() -> None:
    # A label is an attribute key, so it appears as a string literal in the module that
    # creates the instrument (or it comes from the resource: job, instance; or is `le`).
    series = emitted_series()
    literals: dict[Path, set[str]] = {}
    for where, expr in _expressions():
        metrics, labels = parse_selectors(expr)
        allowed = set(_RESOURCE_LABELS)
        for metric in metrics & set(series):  # unknown names fail the test above
            module = series[metric].module
            if module not in literals:
                tree = ast.parse(module.read_text())
                literals[module] = {
                    prometheus_label(n.value)
                    for n in ast.walk(tree)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str)
                }
            allowed |= literals[module]
        assert labels <= allowed, f"{where}: labels {sorted(labels - allowed)} never set"


def test_the_dashboard_covers_what_otelkit_exists_to_show() -> None:
    queried = set()
    for _, expr in _expressions():
        queried |= parse_selectors(expr)[0]
    required = {
        ("otelkit.job.transitions", ""),
        ("otelkit.job.queue_wait", "_bucket"),
        ("messaging.process.duration", "_bucket"),
        ("messaging.process.duration", "_count"),  # failures by error.type
        ("otelkit.job.oldest_ready.age", ""),
        ("otelkit.coalesce.suppressed", ""),
        ("otelkit.coalesce.overflow", ""),
        ("otelkit.relay.records", ""),
        ("otelkit.relay.dropped", ""),
        ("otelkit.export.dropped", ""),
        ("otelkit.cache.requests", ""),
        ("otelkit.preload.used", ""),
        ("otelkit.preload.wasted", ""),
        ("otelkit.preload.load.duration", "_bucket"),
    }
    by_name = {i.name: i for i in otelkit_instruments()}
    for name, suffix in required:
        instrument = by_name[name]
        series = prometheus_name(name, instrument.unit, instrument.kind) + suffix
        assert series in queried, f"no panel shows {name} ({series})"


def test_the_dashboard_uses_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    datasources = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/otelkit.yaml").read_text()
    )["datasources"]
    uids = {d["uid"] for d in datasources if d["type"] == "prometheus"}
    for panel in _panels(dashboard):
        assert panel["datasource"]["uid"] in uids, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids, panel["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert dashboard["uid"] and dashboard["title"]


# ---- promtool -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def promtool() -> str:
    """The promtool binary; under CI=true its absence fails the test instead of skipping it."""
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not on PATH (.ci/run installs it from Debian's prometheus package)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return path


def _check_rules(
    promtool: str, rules: list[dict[str, str]], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "otelkit-dashboard", "rules": rules}]}))
    return subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_panel_expression_parses_with_promtool(promtool: str, tmp_path: Path) -> None:
    rules = [
        {"record": f"otelkit_dashboard:expr_{i}", "expr": expr}
        for i, (_, expr) in enumerate(_expressions())
    ]
    result = _check_rules(promtool, rules, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_promtool_rejects_a_broken_expression(promtool: str, tmp_path: Path) -> None:
    # The check above is only worth something if promtool really parses the expressions.
    result = _check_rules(
        promtool, [{"record": "broken", "expr": "sum by (le (rate(x[5m]))"}], tmp_path
    )
    assert result.returncode != 0
