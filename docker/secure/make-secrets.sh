#!/bin/sh
# make-secrets.sh DIR: the secrets of docker/compose.secure.yaml, made once
# (a second run keeps what exists):
#   ca.pem                  a CA that signs the two certificates below
#   http.pem, http.key      the catchall nodes' HTTPS certificate (every
#                           service name, localhost and 127.0.0.1)
#   kafka-keystore.pem      the broker's key and certificate (Kafka PEM store)
#   kafka_jaas.conf         the broker's SASL/SCRAM login module
#   kafka-password          the SCRAM-SHA-512 password of Kafka user catchall
#   api-keys                auth.keys_file: sha256 of each API key, scopes
#   metrics-key             the key Prometheus scrapes /metrics with
#   keys.txt                the API keys in clear, for the operator
#   catchall.toml           the catchall nodes' settings: TLS, keys, Kafka SASL
# Each private file is readable only by the user of the service that needs it
# (uids: catchall 10001, the apache/kafka image's appuser 1000, Prometheus
# 65534); certificates, the CA and the key hashes are public. Run as root.
set -eu
dir="${1:?usage: make-secrets.sh DIR}"
cd "$dir"
if [ -s keys.txt ] && [ -s ca.pem ]; then
  echo "secrets exist in $dir; API keys:"
  cat keys.txt
  exit 0
fi
umask 022
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.pem -days 825 -subj "/CN=catchall demo CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
sign() {  # name subject-alt-names
  openssl req -new $ec -keyout "$1.key" -out "$1.csr" -subj "/CN=$1"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$2" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
    -extfile "$1.ext" -out "$1.pem"
  rm -f "$1.csr" "$1.ext"
}
sign http "DNS:localhost,IP:127.0.0.1,DNS:ingest-1,DNS:ingest-2,DNS:aggregator-1,DNS:aggregator-2,DNS:query-1,DNS:query-2"
sign kafka "DNS:kafka,DNS:localhost,IP:127.0.0.1"
cat kafka.key kafka.pem ca.pem >kafka-keystore.pem
rm -f kafka.key kafka.pem ca.key ca.srl
cat >kafka_jaas.conf <<'JAAS'
KafkaServer {
  org.apache.kafka.common.security.scram.ScramLoginModule required;
};
JAAS
openssl rand -hex 24 | tr -d '\n' >kafka-password
: >api-keys
: >keys.txt
for scope in ingest query metrics; do
  key="$(openssl rand -hex 24)"
  hash="$(printf %s "$key" | openssl dgst -sha256 -r | cut -d' ' -f1)"
  printf '# the %s key\n%s %s\n' "$scope" "$hash" "$scope" >>api-keys
  printf '%s key: %s\n' "$scope" "$key" >>keys.txt
  [ "$scope" = metrics ] && printf %s "$key" >metrics-key
done
cat >catchall.toml <<TOML
# Made by make-secrets.sh for docker/compose.secure.yaml.
[server]
tls_cert_file = "/secrets/http.pem"
tls_key_file = "/secrets/http.key"
[auth]
keys_file = "/secrets/api-keys"
[kafka.client]
"security.protocol" = "SASL_SSL"
"sasl.mechanisms" = "SCRAM-SHA-512"
"sasl.username" = "catchall"
"sasl.password" = "$(cat kafka-password)"
"ssl.ca.location" = "/secrets/ca.pem"
TOML
chmod 644 ca.pem http.pem api-keys kafka_jaas.conf
chmod 600 http.key catchall.toml kafka-keystore.pem kafka-password metrics-key keys.txt
chown 10001 http.key catchall.toml
chown 1000 kafka-keystore.pem kafka-password
chown 65534 metrics-key
echo "made secrets in $dir; API keys (also in keys.txt there):"
cat keys.txt
