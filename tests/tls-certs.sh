#!/bin/sh
# tls-certs.sh DIR -- a throwaway PKI for the TLS tests, made with the
# openssl command line tool (P-256 keys, valid for 30 days unless said):
#
#   ca1.pem ca1.key           CA1, signs everything below unless said
#   ca2.pem ca2.key           CA2, a CA the other side does not trust
#   server.pem server.key     receiver: DNS localhost, IP 127.0.0.1 (serverAuth)
#   client.pem client.key     sender: DNS sender.test (clientAuth)
#   client-ca2.pem .key       sender.test again, but signed by CA2
#   expired.pem expired.key   localhost/127.0.0.1, valid only in January 2020
#                             (serverAuth and clientAuth)
#   other.pem other.key       DNS other.test only (serverAuth and clientAuth)
#   cnonly.pem cnonly.key     CN=sender.test and no subjectAltName (clientAuth)
#   garbage.pem               not PEM at all
#
# Nothing here is secret; the directory is made if missing, and files in it
# are overwritten.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
mkdir -p "$1"
cd "$1"

cat >openssl.cnf <<'EOF'
# Only what these certificates need; no system defaults.
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused

[ca]
default_ca = ca_here
[ca_here]
database = index.txt
new_certs_dir = newcerts
serial = serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:sender.test
authorityKeyIdentifier = keyid

[both]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid

[other]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:other.test
authorityKeyIdentifier = keyid

[cnonly]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF
export OPENSSL_CONF="$PWD/openssl.cnf"

key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$1.key" 2>/dev/null
	chmod 600 "$1.key"
}

# ca NAME "CN"
ca() {
	key "$1"
	openssl req -config openssl.cnf -new -x509 -key "$1.key" \
	    -subj "/CN=$2" -days 30 -extensions v3_ca -out "$1.pem"
}

# leaf NAME CA "CN" EXTENSIONS [openssl ca validity options...]
leaf() {
	n=$1 c=$2 cn=$3 ext=$4
	shift 4
	key "$n"
	openssl req -config openssl.cnf -new -key "$n.key" -subj "/CN=$cn" \
	    -out "$n.csr"
	: >index.txt
	mkdir -p newcerts
	[ -f serial ] || echo 1000 >serial
	[ $# -gt 0 ] || set -- -days 30
	openssl ca -config openssl.cnf -batch -notext -cert "$c.pem" \
	    -keyfile "$c.key" -extensions "$ext" -in "$n.csr" -out "$n.pem" \
	    "$@" 2>/dev/null
	rm -rf "$n.csr" newcerts index.txt.* serial.old
}

rm -f serial
ca ca1 "xmig test CA1"
ca ca2 "xmig test CA2"
leaf server ca1 localhost server
leaf client ca1 sender.test client
leaf client-ca2 ca2 sender.test client
leaf expired ca1 localhost both \
    -startdate 20200101000000Z -enddate 20200131000000Z
leaf other ca1 other.test other
leaf cnonly ca1 sender.test cnonly
printf 'this is not a certificate\n' >garbage.pem
rm -f index.txt serial
