"""The redact stage: PII out of transcripts and audio (opt-in per batch)."""
