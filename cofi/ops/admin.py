"""One-shot setup: Kafka topics and database migrations (`python -m cofi.ops.admin init|topics|migrate`).

Idempotent, so the compose topic-init service and every test fixture can run it freely.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from cofi.errors import EXIT_NOT_COMPLETED, EXIT_OK, AdminError
from cofi.logs import setup_logging
from cofi.pipeline.kafka import ConnectErrors, client_config
from cofi.pipeline.topics import Topics
from cofi.settings import Settings, get_settings

log = logging.getLogger("cofi.ops.admin")

BATCH_START_MAX_BYTES = 16 * 1024 * 1024  # a 10,000-file manifest fits in one BatchStart
TOPIC_HEADROOM_BYTES = 1024 * 1024  # record-batch overhead and headers above MAX_EVENT_BYTES


def _admin_client(settings: Settings, timeout_s: float) -> tuple[Any, ConnectErrors]:
    from confluent_kafka.admin import AdminClient

    errors = ConnectErrors(settings)
    admin = AdminClient(client_config(settings, **{
        "socket.connection.setup.timeout.ms": int(timeout_s * 1000),
        "socket.timeout.ms": int(timeout_s * 1000),
        "log_level": 2,  # connection failures surface as AdminError, not as a stream of FAIL lines
        "logger": logging.getLogger("cofi.ops.admin.rdkafka"),
        "error_cb": errors,
    }))
    return admin, errors


def _existing_topics(admin, errors: ConnectErrors, settings: Settings, timeout_s: float) -> set[str]:
    from confluent_kafka import KafkaException

    try:
        return set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        why = errors.reason(admin)
        raise AdminError(
            f"Kafka broker at {settings.kafka_bootstrap_servers} unreachable within {timeout_s:.0f}s: "
            f"{why or exc}"
        ) from exc


def topic_configs(topics: Topics, max_event_bytes: int) -> dict[str, dict[str, str]]:
    """`max.message.bytes` of every topic, set here rather than left to the broker's default (1 MB in a
    stock broker: a FileEvent with a large questionnaire, rules and trades would be refused, its transaction
    aborted and re-run forever). Services refuse events over MAX_EVENT_BYTES themselves, with the reason."""
    events = str(max_event_bytes + TOPIC_HEADROOM_BYTES)
    configs = {t: {"max.message.bytes": events} for t in topics.all()}
    configs[topics.batch_start] = {"max.message.bytes": str(max(BATCH_START_MAX_BYTES, max_event_bytes))}
    return configs


def align_topic_configs(admin, configs: dict[str, dict[str, str]], names: Iterable[str], timeout_s: float) -> list[str]:
    """Set the configs of existing topics that differ (an older init or another tool made them); the changed."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names if configs.get(n)]
    if not resources:
        return []
    changes = []
    for res, fut in admin.describe_configs(resources, request_timeout=timeout_s).items():
        live = fut.result(timeout=timeout_s)
        wanted = configs[res.name]
        if any(live[k].value != v if k in live else True for k, v in wanted.items()):
            changes.append(ConfigResource(ConfigResource.Type.TOPIC, res.name, incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in wanted.items()]))
    for res, fut in (admin.incremental_alter_configs(changes, request_timeout=timeout_s).items() if changes else []):
        try:
            fut.result(timeout=timeout_s)
        except KafkaException as exc:
            raise AdminError(f"cannot set the configs of topic {res.name}: {exc}") from exc
    return [c.name for c in changes]


def ensure_topics(settings: Settings, *, partitions: int | None = None, timeout_s: float = 15.0) -> list[str]:
    """Create every topic under `settings.topic_prefix` that is missing; returns those created.

    One CreateTopics request for all missing topics; existing topics are left alone.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    topics = Topics(settings.topic_prefix)
    admin, errors = _admin_client(settings, timeout_s)
    existing = _existing_topics(admin, errors, settings, timeout_s)
    configs = topic_configs(topics, settings.max_event_bytes)
    aligned = align_topic_configs(admin, configs, [t for t in topics.all() if t in existing], timeout_s)
    if aligned:
        log.info("topic configs set: %s", ", ".join(aligned))
    missing = [t for t in topics.all() if t not in existing]
    if not missing:
        return []
    new = [
        NewTopic(t, num_partitions=partitions or settings.topic_partitions,
                 replication_factor=settings.topic_replication, config=configs.get(t, {}))
        for t in missing
    ]
    futures = admin.create_topics(new, operation_timeout=timeout_s, request_timeout=timeout_s)
    created: list[str] = []
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue  # a concurrent init won the race
            raise AdminError(f"cannot create topic {name}: {exc}") from exc
    _wait_visible(admin, settings, created, timeout_s)
    log.info("created topics: %s", ", ".join(created) or "none")
    return created


def _wait_visible(admin, settings: Settings, names: list[str], timeout_s: float) -> None:
    """Block until the broker's metadata lists every new topic with leaders for all partitions.

    KRaft acknowledges CreateTopics when the controller commits, slightly before the broker
    serves the topic; callers (test fixtures, a consumer subscribing next) need it served.
    """
    deadline = time.monotonic() + timeout_s
    pending = set(names)
    while pending:
        meta = admin.list_topics(timeout=max(1.0, deadline - time.monotonic())).topics
        pending = {
            n for n in pending
            if n not in meta or meta[n].error is not None or not meta[n].partitions
            or any(p.leader < 0 for p in meta[n].partitions.values())
        }
        if not pending:
            return
        if time.monotonic() > deadline:
            raise AdminError(f"topics created but not served within {timeout_s:.0f}s: {', '.join(sorted(pending))}")
        time.sleep(0.05)


def delete_topics(settings: Settings, names: Iterable[str] | None = None, *, timeout_s: float = 15.0) -> None:
    """Delete topics (default: every topic under the prefix). Used by test teardown."""
    from confluent_kafka import KafkaException

    topics = list(names) if names is not None else Topics(settings.topic_prefix).all()
    admin, errors = _admin_client(settings, timeout_s)
    existing = _existing_topics(admin, errors, settings, timeout_s)
    doomed = [t for t in topics if t in existing]
    if not doomed:
        return
    for name, fut in admin.delete_topics(doomed, operation_timeout=timeout_s, request_timeout=timeout_s).items():
        try:
            fut.result(timeout=timeout_s)
        except KafkaException as exc:
            log.warning("cannot delete topic %s: %s", name, exc)


def kafka_security(settings: Settings, secrets_dir: Path, *, prefix: str | None = None,
                   timeout_s: float = 15.0) -> tuple[list[str], int]:
    """SCRAM users for every cofi principal and the ACLs of the topic prefix; run as the admin principal."""
    from cofi.pipeline import acls

    admin, errors = _admin_client(settings, timeout_s)
    _existing_topics(admin, errors, settings, timeout_s)  # a clear AdminError when unreachable or refused
    users = acls.ensure_users(admin, secrets_dir, timeout_s=timeout_s)
    return users, acls.apply_acls(admin, prefix or settings.topic_prefix, timeout_s)


def db_roles(settings: Settings, secrets_dir: Path | None, *, host: str = "%", require_ssl: bool = False) -> dict[str, str]:
    """The migrate/tracker/reader users (`cofi.ops.dbroles`), made over DATABASE_URL (a DBA's account)."""
    from cofi.db import tls_args
    from cofi.ops.dbroles import ROLES, provision

    url = make_url(settings.database_url)
    admin = create_engine(url.set(database=""), connect_args={"connect_timeout": 10, **tls_args(settings)})
    try:
        urls = provision(admin, url.database or "cofi", secrets_dir, host=host, require_ssl=require_ssl)
    except OperationalError as exc:
        raise AdminError(f"cannot create the database users: {exc.orig}") from exc
    finally:
        admin.dispose()
    for r in ROLES:
        log.info("%s=%s", r.setting, make_url(urls[r.role]).render_as_string(hide_password=True))
    return urls


def create_database(url: str, *, connect_timeout_s: int = 10, connect_args: dict[str, Any] | None = None) -> bool:
    """Create the database named in `url` if it is missing; True when created."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise AdminError(f"DATABASE_URL names no database: {parsed.render_as_string(hide_password=True)}")
    server = create_engine(parsed.set(database=""),
                           connect_args={"connect_timeout": connect_timeout_s, **(connect_args or {})})
    try:
        with server.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"), {"n": name}
            ).first()
            if exists:
                return False
            quoted = name.replace("`", "``")
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{quoted}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
            return True
    except OperationalError as exc:
        raise AdminError(
            f"MySQL/MariaDB at {parsed.render_as_string(hide_password=True)} unreachable: {exc.orig}"
        ) from exc
    finally:
        server.dispose()


def migrate_database(settings: Settings, revision: str = "head") -> None:
    """Create the database if needed and upgrade it to `revision`."""
    from cofi.db import migrate, role_url, tls_args

    url = role_url(settings, "migrate")
    if create_database(url, connect_args=tls_args(settings)):
        log.info("created database %s", make_url(url).database)
    try:
        migrate(url, revision, tls_args(settings))
    except OperationalError as exc:
        raise AdminError(f"migration failed: {exc.orig}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cofi.ops.admin", description=__doc__)
    parser.add_argument("command", choices=["init", "topics", "migrate", "kafka-security", "db-roles"])
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the broker")
    parser.add_argument("--secrets", type=Path, help="kafka-security, db-roles: folder of <name>.password files "
                        "(missing ones are made)")
    parser.add_argument("--require-ssl", action="store_true", help="db-roles: the users may only connect over TLS")
    parser.add_argument("--host", default="%", help="db-roles: host pattern of the users (default %%)")
    args = parser.parse_args(argv)
    setup_logging()
    settings = get_settings()
    try:
        if args.command in ("init", "migrate"):
            migrate_database(settings)
            log.info("database at head")
        if args.command in ("init", "topics"):
            created = ensure_topics(settings, timeout_s=args.timeout)
            log.info("topics ready (%d created) under prefix %r", len(created), settings.topic_prefix)
        if args.command == "kafka-security" and args.secrets is None:
            parser.error("kafka-security needs --secrets DIR")
        if args.command == "db-roles":
            db_roles(settings, args.secrets, host=args.host, require_ssl=args.require_ssl)
        if args.command == "kafka-security":
            users, n = kafka_security(settings, args.secrets, timeout_s=args.timeout)
            log.info("SCRAM users %s; %d ACLs for prefix %r", ", ".join(users), n, settings.topic_prefix)
    except AdminError as exc:
        log.error("%s", exc)
        return EXIT_NOT_COMPLETED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
