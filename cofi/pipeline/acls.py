"""Who may do what on Kafka: one principal per service, its ACLs derived from the stage registry.

- a stage reads its input topic and the control topic, writes the topics a file can go to next
  (the following stages up to the first mandatory one, `done` when only optional ones follow) and
  `failed`; its consumer group `<prefix>-<stage>` and transactional ids `<prefix>-<stage>-*` are its own;
  it may describe the groups of the stages it writes to (backpressure reads their offsets, not their messages);
- the tracker reads every topic and writes the stage topics, `done` and `failed` (intake, resume, reaudit);
- the submitter (CLI, console, demo) writes only `batch.start` and `batch.control`;
- `admin` (topics, users, ACLs) is a super user in the broker's configuration, not an ACL.
The broker denies everything else (`allow.everyone.if.no.acl.found=false`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from cofi.errors import AdminError
from cofi.pipeline.stages import REGISTRY, STAGES, next_stages
from cofi.pipeline.topics import Topics
from cofi.secretfile import secret_in

log = logging.getLogger(__name__)

TRACKER = "tracker"
SUBMITTER = "submitter"
ADMIN = "admin"
SCRAM_ITERATIONS = 8192


def principals() -> list[str]:
    """Every cofi principal that gets a SCRAM user (admin's is made when the broker's storage is formatted)."""
    return [TRACKER, *STAGES, SUBMITTER]


@dataclass(frozen=True)
class Grant:
    """One ALLOW ACL: principal may `operation` on the resource (`prefixed`: every name starting with it)."""

    principal: str
    resource: str  # topic | group | transactional_id
    name: str
    operation: str  # read | write | describe
    prefixed: bool = False


def grants(prefix: str) -> list[Grant]:
    """Every ACL of a deployment whose topics are under `prefix`."""
    t = Topics(prefix)
    out: list[Grant] = []

    def producer(who: str, writes: list[str]) -> None:
        out.extend(Grant(who, "topic", topic, "write") for topic in writes)
        out.append(Grant(who, "transactional_id", f"{prefix}-{who}-", "write", prefixed=True))
        out.append(Grant(who, "transactional_id", f"{prefix}-{who}-", "describe", prefixed=True))

    for spec in REGISTRY:
        s = spec.name
        out += [Grant(s, "topic", t.stage(s), "read"), Grant(s, "topic", t.batch_control, "read"),
                Grant(s, "group", f"{prefix}-{s}", "read"), Grant(s, "group", f"{prefix}-control-watch", "read")]
        # backpressure reads how many files wait for the stages it hands files to (their groups' offsets)
        out += [Grant(s, "group", f"{prefix}-{n}", "describe") for n in next_stages(s) if n in STAGES]
        producer(s, [t.stage(n) for n in next_stages(s)] + [t.failed])
    out += [Grant(TRACKER, "topic", topic, "read") for topic in t.all()]
    out.append(Grant(TRACKER, "group", f"{prefix}-{TRACKER}", "read"))
    producer(TRACKER, [*(t.stage(s) for s in STAGES), t.done, t.failed])
    out += [Grant(SUBMITTER, "topic", t.batch_start, "write"), Grant(SUBMITTER, "topic", t.batch_control, "write")]
    return out


def _bindings(items: list[Grant]) -> list:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP,
             "transactional_id": ResourceType.TRANSACTIONAL_ID}
    ops = {"read": AclOperation.READ, "write": AclOperation.WRITE, "describe": AclOperation.DESCRIBE}
    return [AclBinding(kinds[g.resource], g.name,
                       ResourcePatternType.PREFIXED if g.prefixed else ResourcePatternType.LITERAL,
                       f"User:{g.principal}", "*", ops[g.operation], AclPermissionType.ALLOW) for g in items]


def apply_acls(admin, prefix: str, timeout_s: float = 15.0) -> int:
    """Create the ACLs of `prefix` (idempotent: the broker keeps one of each) and wait until the broker
    enforces them (the controller commits first, the broker's authorizer follows); returns how many."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    bindings = _bindings(list(dict.fromkeys(grants(prefix))))
    for binding, fut in admin.create_acls(bindings, request_timeout=timeout_s).items():
        try:
            fut.result(timeout=timeout_s)
        except KafkaException as exc:
            raise AdminError(f"cannot create ACL {binding}: {exc}") from exc
    every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)
    deadline = time.monotonic() + timeout_s
    while True:
        seen = set(admin.describe_acls(every, request_timeout=timeout_s).result(timeout=timeout_s))
        missing = [b for b in bindings if b not in seen]
        if not missing:
            return len(bindings)
        if time.monotonic() > deadline:
            raise AdminError(f"{len(missing)} ACLs created but not enforced within {timeout_s:.0f}s, e.g. {missing[0]}")
        time.sleep(0.1)


def ensure_users(admin, secrets_dir: Path, names: list[str] | None = None, timeout_s: float = 15.0) -> list[str]:
    """SCRAM-SHA-512 credentials for every principal (upsert: a changed password file takes effect)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    users = names or principals()
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts = [UserScramCredentialUpsertion(u, info, secret_in(secrets_dir, u).encode()) for u in users]
    for user, fut in admin.alter_user_scram_credentials(upserts, request_timeout=timeout_s).items():
        try:
            fut.result(timeout=timeout_s)
        except KafkaException as exc:
            raise AdminError(f"cannot set the SCRAM credential of {user}: {exc}") from exc
    return users
