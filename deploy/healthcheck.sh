#!/bin/bash
# towerhook-healthcheck [PATH]: exits 0 when towerhook answers GET PATH (default /healthz)
# with 200, else prints the answer (for /readyz: the problems) and exits 1.
#
# Installed in the image as /usr/local/bin/towerhook-healthcheck. The slim image has no
# curl: bash's /dev/tcp does one HTTP/1.1 request on the address of TOWERHOOK_LISTEN.
set -u
path="${1:-/healthz}"
listen="${TOWERHOOK_LISTEN:-127.0.0.1:8080}"
port="${listen##*:}"
host="${listen%:*}"
case "$host" in
  0.0.0.0 | "[::]" | "") host=127.0.0.1 ;;  # every interface: the loopback one will do
  \[*\]) host="${host#[}"; host="${host%]}" ;;
esac

if ! exec 3<>"/dev/tcp/$host/$port"; then
  echo "towerhook-healthcheck: nothing listens on $host:$port" >&2
  exit 1
fi
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
response="$(timeout 5 cat <&3)"
exec 3<&-
status="${response%%$'\r'*}"
case "$status" in
  "HTTP/1.1 200 "* | "HTTP/1.0 200 "*) exit 0 ;;
esac
echo "towerhook-healthcheck: GET $path: ${status:-no answer}" >&2
body="${response#*$'\r\n\r\n'}"
[ "$body" != "$response" ] && echo "$body" >&2
exit 1
