#!/usr/bin/env bash
# Makes the certificates of the test Kafka's secured listeners with openssl, into DIR (once:
# an existing DIR/ca.pem is kept). Everything is for 127.0.0.1 and for tests only.
#   ca.pem                    the CA the broker and the good clients use
#   broker-keystore.pem       the broker's key + certificate (SAN 127.0.0.1, localhost)
#   client.pem client.key     a client certificate and its unencrypted key
#   client-enc.key            the same key encrypted with the password in client-enc.pass
#   expired.pem expired.key   a client certificate of the CA that expired in 2020
#   foreign-ca.pem foreign.pem foreign.key   another CA, and a client certificate of it
# usage: make-certs.sh DIR
set -euo pipefail
dir=$1
[ -f "$dir/ca.pem" ] && exit 0
mkdir -p "$dir"
cd "$dir"
days=3650

key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }
ca() { # ca NAME SUBJECT
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days $days -out "$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
signed() { # signed NAME CA SUBJECT EXT [openssl-ca dates...]
  local name=$1 ca=$2 subj=$3 ext=$4
  key "$name.key"
  openssl req -new -key "$name.key" -subj "/CN=$subj" -out "$name.csr"
  printf '%s\n' "$ext" >"$name.ext"
  if [ $# -gt 4 ]; then # explicit validity: openssl ca takes -startdate/-enddate
    mkdir -p ca-db && : >ca-db/index.txt && echo 1000 >ca-db/serial
    cat >ca-db/ca.cnf <<CNF
[ca]
default_ca = d
[d]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = p
[p]
commonName = supplied
CNF
    openssl ca -batch -config ca-db/ca.cnf -cert "$ca.pem" -keyfile "$ca.key" -in "$name.csr" \
      -out "$name.pem" -extfile "$name.ext" -notext "${@:5}" 2>/dev/null
  else
    openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days $days \
      -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  fi
  rm -f "$name.csr" "$name.ext"
}

ca ca "esmd test CA"
ca foreign-ca "another CA"
signed broker ca localhost "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
cat broker.key broker.pem >broker-keystore.pem
signed client ca esmd-client "extendedKeyUsage=clientAuth"
echo "client-key-password" >client-enc.pass
openssl pkcs8 -topk8 -in client.key -out client-enc.key -v2 aes-256-cbc -passout file:client-enc.pass
signed expired ca esmd-expired "extendedKeyUsage=clientAuth" -startdate 20200101000000Z -enddate 20200102000000Z
signed foreign foreign-ca esmd-foreign "extendedKeyUsage=clientAuth"
rm -rf ca-db ./*.srl
chmod 600 ./*.key
