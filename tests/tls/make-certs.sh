#!/bin/sh
# make-certs.sh: the certificates of the TLS tests, made anew each run
#
# Copyright 2026 The Np authors
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   make-certs.sh OUTDIR
#
# Writes into OUTDIR, each as NAME.pem with its key as NAME-key.pem:
#   ca          the tests' certificate authority
#   server      a server certificate signed by ca, for DNS localhost and
#               the IP addresses 127.0.0.1 and ::1
#   client      a client certificate signed by ca, CN np-test-client
#   intruder    a client certificate signed by ca, CN np-test-intruder
#   foreign-client  a client certificate signed by other-ca, CN
#               np-test-client
#   expired     like server, but expired years ago
#   other-name  a server certificate signed by ca for other.invalid only
#   other-ca    another certificate authority
#   foreign     like server, but signed by other-ca
#   self-signed a self-signed server certificate for localhost, 127.0.0.1
#               and ::1

set -eu

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi

out=$1
mkdir -p "$out"
cd "$out"

# Elliptic-curve keys on P-256, which TLS 1.3 takes: made at once,
# where RSA ones take seconds.
key () {
  certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 \
           --outfile "$1-key.pem" 2>/dev/null
}

# template NAME CN [LINES...]: the template of a certificate
template () {
  name=$1
  cn=$2
  shift 2
  {
    echo "cn = \"$cn\""
    echo "organization = \"Np tests\""
    echo "serial = $(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
    for line in "$@"; do
      echo "$line"
    done
  } > "$name.tmpl"
}

ca () {
  key "$1"
  template "$1" "$2" "ca" "cert_signing_key" "crl_signing_key" "expiration_days = 3650"
  certtool --generate-self-signed --load-privkey "$1-key.pem" --template "$1.tmpl" \
           --outfile "$1.pem" 2>/dev/null
}

# signed NAME CA CN [LINES...]
signed () {
  name=$1
  issuer=$2
  cn=$3
  shift 3
  key "$name"
  template "$name" "$cn" "$@"
  certtool --generate-certificate --load-privkey "$name-key.pem" \
           --load-ca-certificate "$issuer.pem" --load-ca-privkey "$issuer-key.pem" \
           --template "$name.tmpl" --outfile "$name.pem" 2>/dev/null
}

server_names='dns_name = "localhost"
ip_address = "127.0.0.1"
ip_address = "::1"'

server_lines () {
  printf '%s\n' "$server_names" "tls_www_server" "signing_key" "encryption_key"
}

ca ca "Np test CA"
ca other-ca "Np other test CA"

# Lines with spaces pass one by one: read them into the positional list.
old_ifs=$IFS
IFS='
'
set -- $(server_lines)
IFS=$old_ifs

signed server ca localhost "$@" "expiration_days = 3650"
signed foreign other-ca localhost "$@" "expiration_days = 3650"
signed expired ca localhost "$@" \
       "activation_date = \"2001-01-01 00:00:00 UTC\"" \
       "expiration_date = \"2002-01-01 00:00:00 UTC\""

key self-signed
template self-signed localhost "$@" "expiration_days = 3650"
certtool --generate-self-signed --load-privkey self-signed-key.pem --template self-signed.tmpl \
         --outfile self-signed.pem 2>/dev/null

signed other-name ca other.invalid 'dns_name = "other.invalid"' \
       "tls_www_server" "signing_key" "encryption_key" "expiration_days = 3650"

signed client ca np-test-client "tls_www_client" "signing_key" "expiration_days = 3650"
signed intruder ca np-test-intruder "tls_www_client" "signing_key" "expiration_days = 3650"
signed foreign-client other-ca np-test-client "tls_www_client" "signing_key" "expiration_days = 3650"

rm -f ./*.tmpl
