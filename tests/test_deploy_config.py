"""docker-compose.yml and the Collector config cannot run here (no Docker engine):
check their structure and that ports and endpoints agree with each other and the README."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def collector() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "collector-config/otel-collector.yaml").read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_pipeline_references_defined_components(collector: dict[str, Any]) -> None:
    pipelines = collector["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline[kind]:
                assert component in collector[kind], f"{name}: {kind} {component} undefined"
        assert pipeline["processors"][0] == "memory_limiter", f"{name}: memory_limiter first"
        assert "batch" in pipeline["processors"]
    for extension in collector["service"]["extensions"]:
        assert extension in collector["extensions"]


def test_signals_go_where_the_design_says(collector: dict[str, Any]) -> None:
    pipelines = collector["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["otlp/jaeger"]
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    assert pipelines["logs"]["exporters"] == ["debug"]
    assert "health_check" in collector["extensions"]
    protocols = collector["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")


def test_every_image_is_pinned_to_an_exact_version(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned"


def _published(service: dict[str, Any]) -> set[int]:
    return {int(str(port).split(":")[0]) for port in service.get("ports", [])}


def test_ports_agree_between_compose_collector_and_readme(
    compose: dict[str, Any], collector: dict[str, Any]
) -> None:
    services = compose["services"]
    assert {4317, 4318, 13133} <= _published(services["otel-collector"])
    assert 16686 in _published(services["jaeger"])
    jaeger_target = collector["exporters"]["otlp/jaeger"]["endpoint"]
    assert jaeger_target == "jaeger:4317"
    assert "jaeger" in services
    prometheus_cfg = yaml.safe_load((ROOT / "collector-config/prometheus.yml").read_text())
    targets = prometheus_cfg["scrape_configs"][0]["static_configs"][0]["targets"]
    exporter_port = collector["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    assert targets == [f"otel-collector:{exporter_port}"]
    mounted = " ".join(services["otel-collector"]["volumes"])
    assert "collector-config/otel-collector.yaml" in mounted
    readme = (ROOT / "README.md").read_text()
    assert "docker compose up -d" in readme
    assert "http://localhost:16686" in readme
    assert "4317" in readme and "4318" in readme


def test_the_default_endpoints_match_the_compose_ports() -> None:
    from otelkit._config import _DEFAULT_ENDPOINTS

    assert _DEFAULT_ENDPOINTS == {
        "grpc": "http://localhost:4317",
        "http/protobuf": "http://localhost:4318",
    }
