"""`make demo`: synthesize calls, submit them to the running pipeline, watch it, show the outcome.

Runs after `make up` (Kafka, MariaDB, tracker, six stage services). It goes through the
same code as `cofi submit`, `cofi status --watch` and `cofi monitor`, so what the demo
shows is what an operator gets. It fails with one clear line when the pipeline is not up.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from cofi.audit.formats import LinesFormat, WordField
from cofi.audit.instruments import default_master
from cofi.audit.llm_client import LlmClient
from cofi.devtools import synth
from cofi.errors import (
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_NOT_COMPLETED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    CliError,
    KafkaUnavailable,
    PermanentError,
    TransientError,
    UnknownStageError,
)
from cofi.ops.cli.api import make_console, new_batch_id, print_monitoring, read_results, submit_batch, watch_batch
from cofi.pipeline.topics import stage_plan
from cofi.settings import STAGE_METRICS_PORTS, Settings, get_settings

ORDER = re.compile(r"I want to (buy|sell) (.+?) shares of (.+?) at (.+?) dollars\.")
WORDS_TO_NUMBER = {words: n for n, words in synth.NUMBERS_EN.items()}  # the synthesizer's own vocabulary
# instruments of the built-in master (cofi/audit/defaults/instruments.csv), spoken by their names
DEMO_COMPANIES = ("Infosys", "Tata Motors", "Reliance Industries", "State Bank of India", "Microsoft", "Apple")

DEMO_RULES = """\
# Demo rules: llm2 evaluates them for every call.
- id: recording_disclosed
  description: The customer is told that the call is recorded
  severity: critical
  when: answers.recording_disclosed == "yes"
- id: order_read_back
  description: The order is read back before it is placed
  severity: major
  when: answers.trade_read_back == "yes"
- id: no_long_silence
  description: No silence longer than 20 seconds
  severity: minor
  when: speech.longestSilenceSec <= 20
"""


def _healthz(port: int, timeout_s: float) -> tuple[int, bytes] | str:
    """(HTTP status, body) of http://127.0.0.1:<port>/healthz (a 503 carries its detail too), or why none came."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout_s) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:
        return str(getattr(exc, "reason", exc))


def health(port: int, timeout_s: float = 3.0) -> str | None:
    """None when the service's /healthz says 200, else why not."""
    got = _healthz(port, timeout_s)
    if isinstance(got, str):
        return got
    return None if got[0] == 200 else f"HTTP {got[0]}"


def engine_of(port: int, timeout_s: float = 3.0) -> str | None:
    """The engine a stage service says it runs (its /healthz `engine`), None when it does not say."""
    got = _healthz(port, timeout_s)
    try:
        return None if isinstance(got, str) else json.loads(got[1]).get("engine")
    except (ValueError, AttributeError):
        return None


def check_services(settings: Settings, plan: list[str], console: Console, wait_s: float = 240.0) -> None:
    """The tracker and every needed stage must answer /healthz; services that were just started
    load their models first, so wait for them (up to `wait_s`) and say which ones we wait for."""
    ports = {"tracker": settings.metrics_port_for("tracker"), **{s: STAGE_METRICS_PORTS[s] for s in plan}}
    deadline = time.monotonic() + wait_s
    with console.status("waiting for the services to answer /healthz ...") as spinner:
        while True:
            down = {name: why for name, port in ports.items() if (why := health(port)) is not None}
            if not down:
                return
            if time.monotonic() > deadline:
                listing = ", ".join(f"{n} (:{ports[n]}: {w})" for n, w in down.items())
                raise CliError(f"services not answering after {wait_s:.0f}s: {listing}; start them with "
                               "`make up` (logs in .local/log/, `make status`)", EXIT_UNREACHABLE)
            spinner.update(f"waiting for {', '.join(down)} to answer /healthz (loading models?) ...")
            time.sleep(2)


def verify_llm(settings: Settings, console: Console) -> None:
    """One real completion from LLM_BASE_URL before anything is submitted: a server that answers
    /models but crashes on inference (a bad llama.cpp build) is caught here, not in the batch."""
    fmt = LinesFormat.of([[WordField("answer", ("yes", "no"))]])
    client = LlmClient(settings.model_copy(update={"llm_max_retries": 2}))
    started = time.monotonic()
    try:
        with console.status(f"checking the LLM ({settings.llm_model} at {settings.llm_base_url}) with a completion ..."):
            res = client.chat([{"role": "user", "content": "Is the sky blue on a clear day? Answer yes or no."}], fmt)
    except (TransientError, PermanentError) as exc:
        raise CliError(f"the LLM at {settings.llm_base_url} cannot complete a prompt: {exc}; see "
                       ".local/log/llm-server.log and `make status`", EXIT_UNREACHABLE) from None
    finally:
        client.close()
    console.print(f"LLM {settings.llm_model} answers ({res.records[0]['answer']!r} in "
                  f"{time.monotonic() - started:.1f}s)")


def write_trades(calls: list[synth.CallTruth], path: Path) -> int:
    """Trades for some calls: most match what the customer ordered, one contradicts it (quantity)."""
    rows = []
    for i, call in enumerate(calls):
        order = next((m for t in call.turns if (m := ORDER.search(t.text))), None)
        if order is None or i % 3 == 1:
            continue  # calls without a trade show `trades_confirmed: na`
        side, qty, company, price = order.groups()
        quantity = WORDS_TO_NUMBER.get(qty, 100) * (2 if i == 2 else 1)  # call 2: the trade contradicts the call
        when = datetime.fromisoformat(call.callStart) + timedelta(minutes=3)
        inst = default_master().named_in(company)
        rows.append({"tradeId": f"T{i:04d}", "clientCode": call.clientCode,
                     "symbol": inst.symbol if inst else company.split()[0].upper(),
                     "side": side, "quantity": quantity, "price": WORDS_TO_NUMBER.get(price, 0),
                     "tradeTime": when.isoformat(), "phone": call.phone})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["tradeId", "clientCode", "symbol", "side", "quantity", "price",
                                               "tradeTime", "phone"])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def results_table(settings: Settings, batch_id: int) -> Table:
    rows = read_results(settings, batch_id)
    table = Table(title=f"batch {batch_id}: results", title_justify="left")
    for name, justify in (("file", "left"), ("status", "left"), ("language", "left"), ("verdict", "left"),
                          ("score", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        score = "" if r["score"] is None else f"{r['score']:.1f}"
        status = r["status"] + (f" ({r['failedStage']})" if r.get("failedStage") else "")
        table.add_row(Text(Path(r["file"]).name), status, r["language"] or "", r["verdict"] or "", score)
    return table


def run(settings: Settings, *, calls: int, seed: int, out_root: Path, skip: list[str], start_timeout: float,
        stall_timeout: float, console: Console, services_wait: float = 240.0) -> int:
    plan = stage_plan(skip)
    check_services(settings, plan, console, wait_s=services_wait)
    if any(s in plan and engine_of(STAGE_METRICS_PORTS[s]) != "passthrough" for s in ("llm1", "llm2")):
        # services on passthrough engines (plumbing checks) never call the LLM
        verify_llm(settings, console)
    batch_id = new_batch_id()
    out = out_root / str(batch_id)
    with console.status(f"synthesizing {calls} calls into {out} (espeak-ng) ..."):
        truths = synth.make_batch(out, calls, seed=seed, companies=DEMO_COMPANIES, max_turns=8)  # short and full calls
    n_trades = write_trades(truths, out / "trades.csv")
    (out / "rules.yaml").write_text(DEMO_RULES)
    console.print(f"{calls} calls, {n_trades} trades (trades.csv) and {DEMO_RULES.count('- id:')} rules (rules.yaml) "
                  f"in {out}")
    submit_batch(settings, out / "manifest.csv", console, batch_id=batch_id, skip=skip, rules=out / "rules.yaml",
                 trades=out / "trades.csv")
    status = watch_batch(settings, batch_id, watch=True, console=console, appear_timeout=start_timeout,
                         stall_timeout=stall_timeout)
    print_monitoring(settings, batch_id, console)
    console.rule("[bold]Results[/]")
    console.print(results_table(settings, batch_id))
    console.print(f"batch {batch_id} ended [bold]{status}[/]; details: cofi results {batch_id}, "
                  f"cofi failures {batch_id}")
    return EXIT_OK if status == "Completed" else EXIT_NOT_COMPLETED


def _fail(message: str, code: int) -> int:
    Console(stderr=True, soft_wrap=True, highlight=False).print(f"[bold red]demo failed:[/] {escape(message)}")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cofi.ops.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=8, help="number of synthetic calls (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="synthesis seed (same seed, same calls)")
    parser.add_argument("--out", type=Path, default=Path(".local/demo"), help="calls go to OUT/<batchId>/")
    parser.add_argument("--skip", default="", help="optional stages to leave out, e.g. denoise,llm1")
    parser.add_argument("--start-timeout", type=float, default=60.0,
                        help="seconds for the tracker to take the batch in")
    parser.add_argument("--services-wait", type=float, default=240.0,
                        help="seconds to wait for freshly started services to load their models and answer")
    parser.add_argument("--stall-timeout", type=float, default=900.0,
                        help="give up when no file progressed for this many seconds")
    args = parser.parse_args(argv)
    console = make_console()
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    try:
        return run(get_settings(), calls=args.calls, seed=args.seed, out_root=args.out,
                   skip=[s for s in args.skip.split(",") if s.strip()], start_timeout=args.start_timeout,
                   stall_timeout=args.stall_timeout, console=console, services_wait=args.services_wait)
    except CliError as exc:
        return _fail(str(exc), exc.code)
    except KafkaUnavailable as exc:
        return _fail(str(exc), EXIT_UNREACHABLE)
    except UnknownStageError as exc:
        return _fail(f"--skip: {exc}", EXIT_INVALID)
    except KeyboardInterrupt:
        console.print("interrupted; the batch keeps running (cofi status <batch> --watch)")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
