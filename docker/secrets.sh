#!/usr/bin/env bash
# Makes the secrets that docker/docker-compose.ssl.yml and docker/docker-compose.sasl.yml
# mount at /etc/kafka/secrets, in the layout of Apache Kafka's own docker examples:
#
#   DIR/ssl:  kafka01.keystore.jks (the broker's key and certificate, SAN localhost,
#             127.0.0.1 and broker), kafka.truststore.jks (the test CA), the three
#             *_creds password files the image's launcher reads, and for clients:
#             ca.pem, client.pem + client.key (signed by the CA, CN=client),
#             client.keystore.jks and client-ssl.properties (Java clients);
#   DIR/sasl: broker_jaas.conf (a KafkaServer section for PLAIN: admin and alice) and
#             client-sasl.properties (alice, for Java clients).
#
#   docker/secrets.sh [DIR]     (default: docker/secrets)
#
# Needs openssl and the JDK's keytool. Passwords are the examples' ("abcdefgh");
# these secrets are for development and tests only. Re-running replaces them.
set -euo pipefail

DIR=${1:-"$(cd "$(dirname "$0")" && pwd)/secrets"}
PASS=abcdefgh
ssl=$DIR/ssl
sasl=$DIR/sasl
rm -rf "$ssl" "$sasl"
mkdir -p "$ssl" "$sasl"
cd "$ssl"

# A CA, then the broker's and a client's certificates signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=sluice-test-ca" \
    -keyout ca.key -out ca.pem 2>/dev/null
sign() { # sign NAME SUBJECT SAN
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
sign broker "/CN=broker" "DNS:localhost,DNS:broker,IP:127.0.0.1"
sign client "/CN=client" "DNS:client"

# JKS keystores through PKCS12, as keytool makes them.
to_jks() { # to_jks NAME ALIAS OUT
    openssl pkcs12 -export -in "$1.pem" -inkey "$1.key" -certfile ca.pem -name "$2" \
        -passout "pass:$PASS" -out "$1.p12"
    keytool -importkeystore -noprompt -srckeystore "$1.p12" -srcstoretype PKCS12 \
        -srcstorepass "$PASS" -destkeystore "$3" -deststoretype JKS -deststorepass "$PASS" \
        -destkeypass "$PASS" >/dev/null 2>&1
}
to_jks broker kafka01 kafka01.keystore.jks
to_jks client client client.keystore.jks
keytool -importcert -noprompt -alias ca -file ca.pem -keystore kafka.truststore.jks \
    -storetype JKS -storepass "$PASS" >/dev/null 2>&1
for f in kafka_keystore_creds kafka_ssl_key_creds kafka_truststore_creds; do
    printf '%s' "$PASS" >"$f"
done
cat >client-ssl.properties <<PROPS
security.protocol=SSL
ssl.truststore.location=$ssl/kafka.truststore.jks
ssl.truststore.password=$PASS
ssl.keystore.location=$ssl/client.keystore.jks
ssl.keystore.password=$PASS
ssl.key.password=$PASS
ssl.endpoint.identification.algorithm=
PROPS
rm -f ca.srl

cat >"$sasl/broker_jaas.conf" <<'JAAS'
KafkaServer {
   org.apache.kafka.common.security.plain.PlainLoginModule required
   username="admin"
   password="admin-secret"
   user_admin="admin-secret"
   user_alice="alice-secret";
};
JAAS
cat >"$sasl/client-sasl.properties" <<'PROPS'
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
    username="alice" \
    password="alice-secret";
PROPS
# The broker runs as uid 10001 in the image; it must read what is mounted.
chmod -R a+rX "$DIR"
echo "secrets in $DIR"
