"""A private Kafka broker as users deploy it (scripts/kafka.sh with KAFKA_SECURITY=sasl_ssl): TLS, SCRAM
users and per-service ACLs, on free ports, data in a tmp dir. Other tests keep the shared PLAINTEXT broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cofi.pipeline.acls import ADMIN
from cofi.settings import Settings
from tests.support.recovery import PrivateKafka


class SecureKafka(PrivateKafka):
    def ports_env(self) -> dict[str, str]:
        return {**super().ports_env(), "KAFKA_SECURITY": "sasl_ssl"}

    @property
    def secrets(self) -> Path:
        """`<principal>.password` files (admin's made by the script, the services' by `kafka-security`)."""
        return self.dir / "security" / "users"

    @property
    def ca(self) -> Path:
        return self.dir / "security" / "ca.pem"

    def settings(self, principal: str = ADMIN, **extra: Any) -> Settings:
        """Settings of a client that logs in as `principal`."""
        return Settings(kafka_bootstrap_servers=self.bootstrap, kafka_security_protocol="SASL_SSL",
                        kafka_sasl_username=principal, kafka_sasl_password_file=self.secrets / f"{principal}.password",
                        kafka_ssl_ca_location=self.ca, **extra)
