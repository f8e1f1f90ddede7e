"""Avro single-object encoding (magic C3 01 + CRC-64-AVRO fingerprint + body).

Every schema in `schemas/` and `schemas/history/` is known by fingerprint, so a
reader resolves bytes written with any past version into the current one.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from cofi.errors import DecodeError

MAGIC = b"\xc3\x01"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
CURRENT = {
    "BatchStart": "batch_start.avsc",
    "FileEvent": "file_event.avsc",
    "FileFailed": "file_failed.avsc",
    "BatchControl": "batch_control.avsc",
}


@dataclass(frozen=True)
class KnownSchema:
    name: str
    fingerprint: bytes
    parsed: dict


def _parse(path: Path) -> KnownSchema:
    raw = json.loads(path.read_text())
    parsed = fastavro.parse_schema(raw, named_schemas={})
    fp = fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")
    return KnownSchema(name=raw["name"], fingerprint=bytes.fromhex(fp), parsed=parsed)


class Codec:
    """Encodes with the current schema of a type; decodes any known writer version."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR) -> None:
        self.current: dict[str, KnownSchema] = {n: _parse(schema_dir / f) for n, f in CURRENT.items()}
        self.by_fp: dict[bytes, KnownSchema] = {s.fingerprint: s for s in self.current.values()}
        for path in sorted((schema_dir / "history").glob("*.avsc")):
            old = _parse(path)
            self.by_fp.setdefault(old.fingerprint, old)

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        schema = self.current[name]
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(schema.fingerprint)
        fastavro.schemaless_writer(buf, schema.parsed, record)
        return buf.getvalue()

    def decode(self, data: bytes | None, expect: str | None = None) -> tuple[str, dict[str, Any]]:
        """Returns (type name, record read into the current schema of that type)."""
        if not data or len(data) < 10 or data[:2] != MAGIC:
            raise DecodeError(f"not an Avro single-object message ({len(data or b'')} bytes, starts {bytes(data or b'')[:4].hex()!r})")
        writer = self.by_fp.get(bytes(data[2:10]))
        if writer is None:
            raise DecodeError(f"unknown schema fingerprint {bytes(data[2:10]).hex()}")
        if expect is not None and writer.name != expect:
            raise DecodeError(f"expected {expect}, got {writer.name}")
        reader = self.current[writer.name]
        try:
            record = fastavro.schemaless_reader(io.BytesIO(data[10:]), writer.parsed, reader.parsed)
        except Exception as exc:  # fastavro raises many types on corrupt bodies
            raise DecodeError(f"corrupt {writer.name} body: {type(exc).__name__}: {exc}") from exc
        return writer.name, record

    def decode_as(self, name: str, data: bytes | None) -> dict[str, Any]:
        return self.decode(data, expect=name)[1]


@lru_cache
def get_codec() -> Codec:
    return Codec()
