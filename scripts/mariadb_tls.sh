# MARIADB_TLS=1 for scripts/mariadb.sh (sourced, not run): the server speaks TLS on its TCP port.
#
#   MARIADB_TLS=1 scripts/mariadb.sh start
#
# Makes, once, under $BASE/tls (mode 0700, never committed): ca.pem/ca.key (a private CA) and
# server.pem/server.key (SAN localhost, 127.0.0.1). Clients set DATABASE_SSL_CA=$BASE/tls/ca.pem; users
# made with `python -m cofi.ops.admin db-roles --require-ssl` can then only connect over TLS.
# Without MARIADB_TLS nothing here runs.

TLS_DIR="$BASE/tls"

tls_enabled() { [ "${MARIADB_TLS:-0}" = 1 ]; }

make_db_certs() {
    [ -s "$TLS_DIR/server.pem" ] && [ -s "$TLS_DIR/ca.pem" ] && return 0
    say "making a private CA and the server certificate in $TLS_DIR"
    make_ca_and_cert "$TLS_DIR" server localhost "DNS:localhost,IP:127.0.0.1" serverAuth
}

# Appended to my.cnf: [mariadbd] is its last section.
write_tls_config() {
    make_db_certs
    cat >>"$CNF" <<EOF2
# ---- MARIADB_TLS=1 (scripts/mariadb_tls.sh) ----
ssl_ca = $TLS_DIR/ca.pem
ssl_cert = $TLS_DIR/server.pem
ssl_key = $TLS_DIR/server.key
tls_version = TLSv1.2,TLSv1.3
EOF2
}
