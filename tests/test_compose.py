"""docker-compose.yml cannot run here (no Docker), so check what can drift: it parses, every
file it references exists, every command names a real module, settings names are real and
metrics ports agree with Prometheus and cofi.settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cofi.pipeline.stages import services
from cofi.settings import STAGE_METRICS_PORTS, Settings

ROOT = Path(__file__).resolve().parent.parent
COFI_SERVICES = [name for name, _, _ in services()]
SERVERS = {"denoise-server": "services.denoise.server", "llm-server": "services.llm1.server"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__main__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_every_service_is_defined(compose: dict[str, Any]) -> None:
    expected = {"kafka", "mysql", "db-roles", "topic-init", "prometheus", "grafana", *COFI_SERVICES, *SERVERS}
    assert expected <= set(compose["services"])
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert compose["services"]["mysql"]["image"].startswith("mysql:8")


def test_commands_name_real_modules(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["topic-init"]["command"][:4] == ["python", "-m", "cofi.ops.admin", "init"]
    wanted = {name: f"services.{name}" for name in COFI_SERVICES} | SERVERS
    for name, module in wanted.items():
        cmd = services[name]["command"]
        assert cmd[:3] == ["python", "-m", module], name
        assert _module_file(module), f"{name}: no module {module} in the repository"
        assert services[name]["build"]["dockerfile"] == "Dockerfile"


def test_environment_names_are_settings(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    for name in ["topic-init", *COFI_SERVICES, *SERVERS]:
        env = compose["services"][name]["environment"]
        unknown = [k for k in env if k.lower() not in fields]
        assert not unknown, f"{name}: environment names no setting: {unknown}"
        assert {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "ARTIFACT_ROOT"} <= set(env), name


def test_metrics_ports_agree_with_settings_and_prometheus(compose: dict[str, Any]) -> None:
    prom = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    for name in COFI_SERVICES:
        port = STAGE_METRICS_PORTS[name]
        assert int(compose["services"][name]["environment"]["METRICS_PORT"]) == port, name
        sd = jobs[name]["dns_sd_configs"][0]
        assert (sd["names"], sd["port"]) == ([name], port), name


def test_referenced_files_exist(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
        for vol in svc.get("volumes", []):
            host = vol.split(":")[0]
            if host.startswith("./"):
                assert (ROOT / host).exists(), f"{name}: {host} missing"
    copies = re.findall(r"^COPY\s+(?!--)(.+?)\s+\S+$", (ROOT / "Dockerfile").read_text(), re.M)
    for sources in copies:
        for src in sources.split():
            assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"


def test_grafana_dashboard_is_provisioned() -> None:
    ds = yaml.safe_load((ROOT / "infra/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = ds["datasources"][0]["uid"]
    provider = yaml.safe_load((ROOT / "infra/grafana/provisioning/dashboards/cofi.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dash = json.loads((ROOT / "infra/grafana/dashboards/cofi.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for metric in ("cofi_stage_files_total", "cofi_stage_processing_seconds_bucket", "cofi_stage_inflight",
                   "cofi_consumer_lag"):
        assert metric in exprs, metric
    assert "histogram_quantile(0.95" in exprs
    assert {t["datasource"]["uid"] for p in dash["panels"] for t in p["targets"]} == {uid}


def test_kafka_and_mysql_are_not_published_and_other_ports_are_local(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "ports" not in services["kafka"] and "ports" not in services["mysql"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_secrets_come_from_the_env_file_without_defaults(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert used <= set(example), f"not in .env.example: {used - set(example)}"
    secrets = {v for v in used if v != "CALLS_DIR"}
    for var in secrets:
        assert example[var] == "", f".env.example gives {var} a value"
        assert all(m == ":?" for m in re.findall(rf"\$\{{{var}(:\?|:-|-|\}})", text)), f"{var} has a default"
    assert compose["services"]["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "cofi:cofi@" not in text and "MYSQL_PASSWORD" not in text
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    assert compose["services"]["tracker"]["environment"]["DATABASE_URL"].startswith("mysql+pymysql://cofi_tracker:")
    assert compose["services"]["topic-init"]["environment"]["DATABASE_MIGRATE_URL"].startswith(
        "mysql+pymysql://cofi_migrate:")
    assert compose["services"]["console"]["environment"]["DATABASE_URL"].startswith("mysql+pymysql://cofi_reader:")


def test_broker_accepts_the_largest_topic_config(compose: dict[str, Any]) -> None:
    """`cofi.ops.admin init` sets max.message.bytes per topic; the broker's own limits must let them through."""
    from cofi.ops.admin import topic_configs
    from cofi.pipeline.topics import Topics

    env = compose["services"]["kafka"]["environment"]
    largest = max(int(c["max.message.bytes"]) for c in topic_configs(Topics(), Settings().max_event_bytes).values())
    assert int(env["KAFKA_MESSAGE_MAX_BYTES"]) >= largest
    assert int(env["KAFKA_REPLICA_FETCH_MAX_BYTES"]) >= largest
    kafka_sh = (ROOT / "scripts" / "kafka.sh").read_text()
    assert f"message.max.bytes={env['KAFKA_MESSAGE_MAX_BYTES']}" in kafka_sh
