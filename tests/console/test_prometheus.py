"""Prometheus for real: the rules pass promtool (syntax and unit tests); Debian's prometheus,
started by scripts/prometheus.sh on free ports, scrapes a running pipeline and the console,
counts every file per stage, fires CofiServiceDown when a stage is stopped mid-batch and
resolves it on restart; the Grafana dashboard only queries metrics that exist."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Engine, text

from cofi.devtools import synth
from cofi.pipeline.passthrough import PassthroughEngine
from cofi.pipeline.stages import STAGES
from cofi.pipeline.topics import stage_plan
from cofi.pipeline.worker import StageWorker
from cofi.settings import Settings
from services.tracker.service import Tracker
from tests.support.console import ConsoleServer, wait_for
from tests.support.servers import free_port as _free_port
from tests.support.tracker import batch_start, submit, wait_status

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "infra/prometheus/rules"
DASHBOARD = ROOT / "infra/grafana/dashboards/cofi.json"
LID_DELAY_MS = 150

needs_prometheus = pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("promtool")),
                                      reason="apt-get install prometheus (Debian's package)")


@needs_prometheus
def test_rules_and_generated_config_pass_promtool(tmp_path: Path) -> None:
    subprocess.run(["promtool", "check", "rules", str(RULES / "cofi.yml")], check=True, capture_output=True)
    unit = subprocess.run(["promtool", "test", "rules", "cofi_test.yml"], cwd=RULES, capture_output=True, text=True)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    env = {**os.environ, "PROMETHEUS_DIR": str(tmp_path / "prom"), "PROMETHEUS_PORT": str(_free_port())}
    subprocess.run(["bash", "scripts/prometheus.sh", "config"], cwd=ROOT, env=env, check=True, capture_output=True)
    config = yaml.safe_load((tmp_path / "prom/prometheus.yml").read_text())
    jobs = {j["job_name"]: j["static_configs"][0]["targets"][0] for j in config["scrape_configs"]}
    assert jobs["stt"] == "127.0.0.1:9104" and jobs["tracker"] == "127.0.0.1:9100" and "console" in jobs
    names = {r.get("alert") or r.get("record") for g in yaml.safe_load((RULES / "cofi.yml").read_text())["groups"]
             for r in g["rules"]}
    assert {"CofiStageStalled", "CofiStageErrorRatioHigh", "CofiServiceDown", "cofi:stage_files:rate1m",
            "cofi:stage_error_ratio:rate5m"} <= names


def _scaled_rules(folder: Path) -> Path:
    """The real rules with minutes turned into seconds, so a test sees alerts fire and resolve."""
    data = yaml.safe_load((RULES / "cofi.yml").read_text())
    for group in data["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[(\d+)m\]", lambda m: f"[{int(m.group(1)) * 2 + 4}s]", rule["expr"])
            if "for" in rule:
                rule["for"] = "2s"
    folder.mkdir(parents=True)
    (folder / "cofi.yml").write_text(yaml.safe_dump(data))
    return folder


class MetricsPipeline:
    """Tracker + one passthrough worker per stage, each serving /metrics on its own free port."""

    def __init__(self, settings: Settings, ports: dict[str, int]) -> None:
        self.settings, self.ports = settings, ports
        self.tracker = Tracker(settings.model_copy(update={"metrics_port": ports["tracker"]}), serve_metrics=True)
        self.threads = {"tracker": threading.Thread(target=self.tracker.run, daemon=True)}
        self.workers: dict[str, StageWorker] = {}
        for stage in STAGES:
            self._worker(stage)

    def _worker(self, stage: str) -> None:
        engine = PassthroughEngine(stage, LID_DELAY_MS if stage == "lid" else 0)
        self.workers[stage] = StageWorker(stage, engine, self.settings.model_copy(
            update={"metrics_port": self.ports[stage]}))
        self.threads[stage] = threading.Thread(target=self.workers[stage].run, daemon=True)

    def stop(self, stage: str) -> None:
        self.workers[stage].stopping.set()
        self.threads[stage].join(timeout=60)

    def restart(self, stage: str) -> None:
        self._worker(stage)
        self.threads[stage].start()

    def __enter__(self) -> MetricsPipeline:
        for t in self.threads.values():
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for w in self.workers.values():
            w.stopping.set()
        self.tracker.stopping.set()
        for t in self.threads.values():
            t.join(timeout=60)


def _query(prom: str, expr: str) -> dict[str, float]:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert r["status"] == "success", r
    return {res["metric"].get("stage") or res["metric"].get("job", ""): float(res["value"][1])
            for res in r["data"]["result"]}


def _alerts(prom: str, name: str) -> list[dict[str, Any]]:
    alerts = httpx.get(f"{prom}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == name]


def _metric_names(url: str) -> set[str]:
    """Series names a live /metrics serves, or declares (`# TYPE`) before its first labelled sample."""
    body = httpx.get(f"{url}/metrics", timeout=10).text
    names = {re.split(r"[{ ]", line, maxsplit=1)[0] for line in body.splitlines() if line and not line.startswith("#")}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M):
        suffixes = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}.get(kind, ("",))
        names |= {name + s for s in suffixes}
    return names


def _batch(settings: Settings, calls: Path, batch_id: int) -> None:
    submit(settings, {**batch_start(batch_id, 0), "files": [], "manifest": str(calls / "manifest.csv")})


@needs_prometheus
@pytest.mark.integration
def test_prometheus_counts_each_stage_and_alerts_on_a_stopped_stage(settings: Settings, db_engine: Engine,
                                                                     tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    synth.make_batch(calls, 24, seed=9, ivr=False, stereo=False, turns=2)
    ports = {name: _free_port() for name in ("tracker", *STAGES)}
    prom_port = _free_port()
    prom = f"http://127.0.0.1:{prom_port}"
    with ConsoleServer(settings) as console, MetricsPipeline(settings, ports) as pipe:
        targets = " ".join([*(f"{n}=127.0.0.1:{p}" for n, p in ports.items()),
                            f"console=127.0.0.1:{console.settings.console_port}"])
        env = {**os.environ, "PROMETHEUS_DIR": str(tmp_path / "prom"), "PROMETHEUS_PORT": str(prom_port),
               "PROMETHEUS_SCRAPE_INTERVAL": "1s", "PROMETHEUS_EVALUATION_INTERVAL": "1s",
               "PROMETHEUS_RULES_DIR": str(_scaled_rules(tmp_path / "rules")), "PROMETHEUS_TARGETS": targets}
        subprocess.run(["bash", "scripts/prometheus.sh", "start"], cwd=ROOT, env=env, check=True, capture_output=True)
        try:
            wait_for(lambda: _query(prom, "up") and min(_query(prom, "up").values()) == 1, 30, "every target up")
            _batch(settings, calls, 5101)
            assert wait_status(db_engine, 5101, timeout=120)["status"] == "Completed"
            per_stage = 'sum by (stage) (cofi_stage_files_total{outcome="success"})'
            counts = wait_for(lambda: (c := _query(prom, per_stage)) and set(c.values()) == {24.0} and len(c) == len(stage_plan())
                              and c, 30, "every stage's count in Prometheus")
            assert counts == {stage: 24.0 for stage in stage_plan()}  # redact (opt-in) had no file
            assert wait_for(lambda: _query(prom, "cofi:stage_files:rate1m").get("lid", 0) > 0, 30, "recorded rate")

            live = set()
            for url in [*(f"http://127.0.0.1:{p}" for p in ports.values()), console.url]:
                live |= _metric_names(url)
            dashboard = json.loads(DASHBOARD.read_text())
            exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
            exprs.append(dashboard["templating"]["list"][0]["definition"])
            used = {m for e in exprs for m in re.findall(r"\bcofi[_:][a-z0-9_:]*", e)}
            recorded = {r["record"] for g in yaml.safe_load((RULES / "cofi.yml").read_text())["groups"]
                        for r in g["rules"] if "record" in r}
            assert {m for m in used if ":" not in m} - live == set(), "dashboard queries metrics nobody serves"
            assert {m for m in used if ":" in m} <= recorded
            assert len(used) >= 8

            _batch(settings, calls, 5102)  # the same calls again, as a new batch
            lid_done = "SELECT COALESCE(SUM(lidDone), 0) FROM fileDistribution WHERE batchId = 5102"
            with db_engine.connect() as c:
                wait_for(lambda: c.execute(text(lid_done)).scalar() >= 3, 60, "lid to start on batch 5102")
            pipe.stop("lid")
            firing = wait_for(lambda: [a for a in _alerts(prom, "CofiServiceDown") if a["state"] == "firing"],
                              60, "CofiServiceDown to fire")
            assert firing[0]["labels"]["job"] == "lid"
            assert wait_status(db_engine, 5102, ("InProgress",), timeout=5)["status"] == "InProgress"
            pipe.restart("lid")
            wait_for(lambda: not _alerts(prom, "CofiServiceDown"), 60, "CofiServiceDown to resolve")
            assert wait_status(db_engine, 5102, timeout=120)["status"] == "Completed"
            with db_engine.connect() as c:
                assert c.execute(text(lid_done)).scalar() == 24
        finally:
            subprocess.run(["bash", "scripts/prometheus.sh", "stop"], cwd=ROOT, env=env, capture_output=True)
