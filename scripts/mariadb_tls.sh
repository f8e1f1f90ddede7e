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
    command -v openssl >/dev/null 2>&1 || die "openssl not found: apt-get install -y openssl"
    (umask 077 && mkdir -p "$TLS_DIR")
    say "making a private CA and the server certificate in $TLS_DIR"
    (
        umask 077
        cd "$TLS_DIR"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=cofi local MariaDB CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
            -extfile server.ext -out server.pem 2>/dev/null
        rm -f server.csr server.ext ca.srl
    ) || die "openssl could not make the certificates in $TLS_DIR"
    chmod 644 "$TLS_DIR/ca.pem"
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
