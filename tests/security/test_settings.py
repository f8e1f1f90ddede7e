"""Security settings reach every Kafka client through one function, and a misspelt one stops the process
instead of silently meaning "off"."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cofi.db import engine_for, role_url, tls_args
from cofi.errors import AdminError
from cofi.pipeline.kafka import consumer_config, producer_config, security_config
from cofi.settings import Settings


def test_a_misspelt_security_setting_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for typo in ("KAFKA_SECURITY_PROTOCL", "KAFKA_SASL_USER", "DATABASE_SSL_CA_FILE", "WEBHOOK_SECRETS", "S3_SECRET_KEY"):
        monkeypatch.setenv(typo, "x")
        with pytest.raises(ValidationError, match=f"{typo} is not a cofi setting"):
            Settings()
        monkeypatch.delenv(typo)
    monkeypatch.setenv("KAFKA_SECURITY", "sasl_ssl")  # scripts/kafka.sh's knob, not a setting
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    assert Settings().kafka_security_protocol == "SASL_SSL"


def test_every_client_config_carries_tls_and_sasl(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    s = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="tracker", kafka_sasl_password_file=tmp_path / "pw",
                 kafka_ssl_ca_location=tmp_path / "ca.pem")
    want = {"security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "tracker",
            "sasl.password": "s3cret", "ssl.ca.location": str(tmp_path / "ca.pem"),
            "ssl.endpoint.identification.algorithm": "https"}
    assert security_config(s) == want
    for conf in (consumer_config(s, "g"), producer_config(s, "txn")):
        assert want.items() <= conf.items()
    assert security_config(Settings()) == {"security.protocol": "plaintext"}


def test_sasl_without_credentials_is_a_clear_error() -> None:
    with pytest.raises(AdminError, match="needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        security_config(Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="tracker"))


def test_database_roles_and_tls_arguments(tmp_path: Path) -> None:
    s = Settings(database_url="mysql+pymysql://w:x@db/cofi", database_read_url="mysql+pymysql://r:x@db/cofi")
    assert (role_url(s, "tracker"), role_url(s, "reader"), role_url(s, "migrate")) == (
        "mysql+pymysql://w:x@db/cofi", "mysql+pymysql://r:x@db/cofi", "mysql+pymysql://w:x@db/cofi")
    assert tls_args(s) == {}
    tls = Settings(database_ssl_ca=tmp_path / "ca.pem", database_ssl_verify_identity=False)
    assert tls_args(tls) == {"ssl_ca": str(tmp_path / "ca.pem"), "ssl_verify_cert": True, "ssl_verify_identity": False}
    engine = engine_for(s, "reader")
    assert engine.url.username == "r"
    engine.dispose()
