"""Files of records an operator brings with a batch (trades, the instrument master): CSV with a
header row, or JSON (a list of objects, or an object holding that list under one key).

Each record comes with where it was read ("trades.csv line 7", "master.json item 3"), so every
error names the row to fix.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any


def read_records(path: str | Path, *, key: str, required: Sequence[str], error: type[ValueError]
                 ) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, record) for every record of the file; `error` (with the file or row) when unusable."""
    p = Path(path)
    if not p.is_file():
        raise error(f"{key} file not found: {p}")
    text = p.read_text(encoding="utf-8-sig")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"{p}: invalid JSON: {exc}") from exc
        rows = data.get(key) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise error(f"{p}: expected a list of {key} (or {{\"{key}\": [...]}})")
        places = [f"{p} item {i}" for i in range(len(rows))]
    else:
        reader = csv.DictReader(io.StringIO(text))
        absent = [k for k in required if k not in (reader.fieldnames or [])]
        if absent:
            raise error(f"{p}: CSV header lacks {', '.join(absent)} (has {reader.fieldnames})")
        rows = list(reader)
        places = [f"{p} line {i + 2}" for i in range(len(rows))]
    for where, row in zip(places, rows, strict=True):
        if not isinstance(row, Mapping):
            raise error(f"{where}: expected an object, got {type(row).__name__}")
        yield where, row
