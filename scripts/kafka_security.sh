# KAFKA_SECURITY=sasl_ssl for scripts/kafka.sh (sourced, not run): the broker as users deploy it.
#
#   KAFKA_SECURITY=sasl_ssl scripts/kafka.sh start      # TLS + SCRAM-SHA-512 + ACLs on 127.0.0.1:$KAFKA_PORT
#   scripts/kafka.sh client-env tracker                 # the settings a client needs, as KEY=value lines
#   KAFKA_SECURITY=sasl_ssl scripts/kafka.sh provision  # users + ACLs again (TOPIC_PREFIX, default cofi)
#
# Without KAFKA_SECURITY (or =plaintext) nothing here runs and the broker is the PLAINTEXT one.
# A data folder formatted without it has no admin credential: use a fresh KAFKA_DIR to switch.
#
# What it makes, under $BASE/security (mode 0700, never committed):
#   ca.pem ca.key           a private CA (10 years); clients trust ca.pem (KAFKA_SSL_CA_LOCATION)
#   broker.p12              the broker's key and certificate (SAN: localhost, 127.0.0.1, KAFKA_ADVERTISED_HOST)
#   users/<name>.password   random secrets: `admin` (super user, inter-broker), `controller` (the
#                           controller listener, SASL/PLAIN), `keystore`, and one per cofi principal
#                           (tracker, each stage, submitter), made by `python -m cofi.ops.admin kafka-security`
# Listeners: SASL_SSL on $PORT (SCRAM-SHA-512) for clients and the broker itself, CONTROLLER on $CPORT
# (SASL_SSL, PLAIN, only the `controller` user). No PLAINTEXT listener at all.
# Authorizer: StandardAuthorizer, allow.everyone.if.no.acl.found=false, super users admin + controller.
# The per-service ACLs come from the stage registry (cofi/pipeline/acls.py), applied after start.

SECURITY="${KAFKA_SECURITY:-plaintext}"
SEC="$BASE/security"

secure() {
    case "$SECURITY" in
        sasl_ssl) return 0 ;;
        plaintext | "") return 1 ;;
        *) die "KAFKA_SECURITY=$SECURITY: use plaintext (default) or sasl_ssl" ;;
    esac
}

# secret NAME: the secret in $SEC/users/NAME.password, made once (random, 0600).
secret() {
    local f="$SEC/users/$1.password"
    if [ ! -s "$f" ]; then
        (umask 077 && mkdir -p "$SEC/users" && head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$f")
    fi
    cat "$f"
}

make_certs() {
    [ -s "$SEC/broker.p12" ] && [ -s "$SEC/ca.pem" ] && return 0
    local san="DNS:localhost,IP:127.0.0.1"
    if [[ "$ADV_HOST" =~ ^[0-9.]+$ ]]; then
        [ "$ADV_HOST" = 127.0.0.1 ] || san="$san,IP:$ADV_HOST"
    elif [ "$ADV_HOST" != localhost ]; then
        san="$san,DNS:$ADV_HOST"
    fi
    say "making a private CA and the broker certificate in $SEC (SAN $san)"
    make_ca_and_cert "$SEC" broker "$ADV_HOST" "$san" serverAuth,clientAuth
    (umask 077 && cd "$SEC" && openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
        -out broker.p12.tmp -passout "pass:$(secret keystore)" && mv broker.p12.tmp broker.p12) ||
        die "openssl could not make the broker's keystore in $SEC"
}

# Appended to server.properties: a later key overrides an earlier one (java.util.Properties).
write_security_config() {
    if [ -f "$DATA/meta.properties" ] && [ ! -f "$SEC/scram.formatted" ]; then
        die "$DATA was formatted without KAFKA_SECURITY=sasl_ssl (no admin SCRAM credential): use another KAFKA_DIR or remove $DATA"
    fi
    make_certs
    local admin_pw controller_pw store_pw
    admin_pw=$(secret admin)
    controller_pw=$(secret controller)
    store_pw=$(secret keystore)
    cat >>"$PROPS" <<EOF

# ---- KAFKA_SECURITY=sasl_ssl (scripts/kafka_security.sh) ----
listeners=SASL_SSL://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=SASL_SSL://$ADV_HOST:$PORT
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:SASL_SSL,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="$controller_pw" user_controller="$controller_pw";
ssl.keystore.type=PKCS12
ssl.keystore.location=$SEC/broker.p12
ssl.keystore.password=$store_pw
ssl.key.password=$store_pw
ssl.truststore.type=PEM
ssl.truststore.location=$SEC/ca.pem
ssl.endpoint.identification.algorithm=https
ssl.client.auth=none
ssl.enabled.protocols=TLSv1.3,TLSv1.2
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:controller
allow.everyone.if.no.acl.found=false
EOF
    chmod 600 "$PROPS"
}

# StorageTool arguments: the admin's SCRAM credential exists before the broker first starts
# (it authenticates the broker to itself on the SASL_SSL inter-broker listener).
scram_format_args() {
    SCRAM_ARGS=()
    secure || return 0
    SCRAM_ARGS=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(secret admin)]")
    touch "$SEC/scram.formatted"
}

# The environment of a cofi client acting as principal $1 (admin, tracker, a stage, submitter).
client_env() {
    local name="$1"
    printf 'KAFKA_BOOTSTRAP_SERVERS=%s\n' "$ADV_HOST:$PORT"
    printf 'KAFKA_SECURITY_PROTOCOL=SASL_SSL\nKAFKA_SASL_MECHANISM=SCRAM-SHA-512\n'
    printf 'KAFKA_SASL_USERNAME=%s\nKAFKA_SASL_PASSWORD_FILE=%s\n' "$name" "$SEC/users/$name.password"
    printf 'KAFKA_SSL_CA_LOCATION=%s\n' "$SEC/ca.pem"
}

# with_client_env NAME CMD...: run CMD with principal NAME's client settings exported.
with_client_env() {
    local name="$1" kv
    shift
    (
        while IFS= read -r kv; do export "$kv"; done < <(client_env "$name")
        export PYTHONPATH="$ROOT"
        cd "$ROOT" && "$@"
    )
}

metadata_ok_secure() {
    with_client_env admin "$PY" - <<'EOF' 2>/dev/null
import sys
from confluent_kafka.admin import AdminClient
from cofi.pipeline.kafka import client_config
from cofi.settings import Settings
md = AdminClient(client_config(Settings(), log_level=0)).list_topics(timeout=3)
sys.exit(0 if md.brokers and md.controller_id is not None and md.controller_id >= 0 else 1)
EOF
}

# SCRAM users for every cofi principal and the ACLs of TOPIC_PREFIX (default cofi), as admin.
provision_security() {
    [ -x "$PY" ] || die "KAFKA_SECURITY=sasl_ssl needs the project's venv ($PY) to create users and ACLs"
    say "creating SCRAM users and ACLs (topic prefix ${TOPIC_PREFIX:-cofi})"
    with_client_env admin "$PY" -m cofi.ops.admin kafka-security --secrets "$SEC/users" ||
        die "could not create the SCRAM users and ACLs"
}

cmd_client_env() {
    [ -n "${1:-}" ] || die "usage: scripts/kafka.sh client-env PRINCIPAL (admin, tracker, a stage, submitter)"
    [ -s "$SEC/users/$1.password" ] || die "no secret for $1 in $SEC/users (start with KAFKA_SECURITY=sasl_ssl first)"
    client_env "$1"
}
