"""The stage registry is the one list of stages: everything else reads it, nothing else lists them."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cofi.pipeline.stages import OPTIONAL_STAGES, REAUDIT_STAGES, REGISTRY, STAGES, services, stage
from cofi.pipeline.topics import Topics
from tests.support.servers import unavailable

ROOT = Path(__file__).resolve().parent.parent
NAMES = "|".join(STAGES)
QUOTED_STAGE = re.compile(rf"""["']({NAMES})["']""")
BARE_STAGE = re.compile(rf"\b({NAMES})\b")
# Where stage names may be written out: the registry itself, the seed's monitoring SQL (a requirement), and
# the audio benchmark, which runs four named engines one after the other (it names engines, not a stage list).
ALLOWED = {"cofi/pipeline/stages.py", "cofi/ops/monitoring.py", "bench/audio.py"}


def _sources() -> list[Path]:
    files = [*ROOT.glob("cofi/**/*.py"), *ROOT.glob("services/**/*.py"), *ROOT.glob("bench/*.py"),
             *ROOT.glob("scripts/*.sh"), ROOT / "Makefile"]
    return sorted(p for p in files if p.relative_to(ROOT).as_posix() not in ALLOWED)


def test_stage_names_are_listed_only_in_the_registry() -> None:
    """No module names three or more stages as literals (a list of stages); one `stage = "lid"` is fine."""
    offenders = {}
    for path in _sources():
        text = path.read_text()
        names = set(QUOTED_STAGE.findall(text))
        if path.suffix in (".sh", "") and len(set(BARE_STAGE.findall(text))) >= 3:
            names |= {"(shell list)"}
        if len(names) >= 3:
            offenders[path.relative_to(ROOT).as_posix()] = sorted(names)
    assert offenders == {}


def test_registry_entries() -> None:
    assert STAGES == tuple(s.name for s in REGISTRY) and len(set(STAGES)) == len(STAGES)
    assert [stage(s).order for s in STAGES] == list(range(len(STAGES)))
    assert OPTIONAL_STAGES < set(STAGES) and REAUDIT_STAGES and set(REAUDIT_STAGES) <= OPTIONAL_STAGES
    ports = [port for _, _, port in services()]
    assert len(set(ports)) == len(ports), "two services share a metrics port"
    assert Topics("x").tracked() == ["x.batch.start", "x.batch.control", *(f"x.stage.{s}" for s in STAGES),
                                     "x.stage.done", "x.failed"]
    assert Topics("x").all() == [*Topics("x").tracked(), "x.deadletter"]


@pytest.mark.parametrize("spec", REGISTRY, ids=STAGES)
def test_every_stage_has_its_service_and_engines(spec) -> None:
    assert (ROOT / "services" / spec.name / "__main__.py").is_file()
    engines = importlib.import_module(spec.engines_module)
    assert spec.default_engine in engines.ENGINES
    assert callable(engines.build_engine)


def test_scripts_read_the_services_from_the_registry() -> None:
    out = subprocess.run([sys.executable, "-m", "cofi.pipeline.stages"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert [tuple(line.split()) for line in out.splitlines()] == [(n, m, str(p)) for n, m, p in services()]
    listed = subprocess.run(["bash", "scripts/services.sh", "status", "bogus"], cwd=ROOT, capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin"})
    assert listed.returncode != 0
    assert f"known: {' '.join(n for n, _, _ in services())} denoise-server llm-server" in listed.stderr + listed.stdout


def test_a_missing_server_is_an_error_under_ci_and_a_skip_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and a server is missing: no broker"):
        unavailable("no broker")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no broker"):
        unavailable("no broker")
