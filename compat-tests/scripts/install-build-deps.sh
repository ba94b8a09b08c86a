#!/usr/bin/env bash
# Installs the system packages the Rust build of the compat tests needs: the `rdkafka` crate
# builds librdkafka from source with cmake. librdkafka 2.12 includes <curl/curl.h> even when
# built with WITH_CURL=0 (its `#ifdef WITH_OAUTHBEARER_OIDC` is always true under cmake's
# `#cmakedefine01`; confluentinc/librdkafka#5135), so the curl headers must exist although
# curl is never linked. OpenSSL's headers too, for librdkafka's SSL support. Returns at once when everything is already there.
set -euo pipefail

missing=()
[[ -f /usr/include/curl/curl.h || -f /usr/include/x86_64-linux-gnu/curl/curl.h ]] || missing+=(libcurl4-openssl-dev)
# librdkafka's SSL support (the TLS listener tests) links the system OpenSSL.
[[ -f /usr/include/openssl/ssl.h ]] || missing+=(libssl-dev)
command -v cmake >/dev/null || missing+=(cmake)
# The TLS tests make their certificates with the openssl command (and the JDK's keytool).
command -v openssl >/dev/null || missing+=(openssl)
command -v c++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

sudo=""
if [[ "$(id -u)" != 0 ]]; then
    sudo="sudo"
fi
echo "install-build-deps.sh: installing ${missing[*]}" >&2
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
    $sudo apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
