#!/bin/sh
## The look at a host's containers on the meshes' Docker networks (hosts/dns-inspect.ts, issue 13).
## Arguments: the number of records files to report, those files' interfaces (INTERFACE_NAME),
## then the network names (checked by DOCKER_NETWORK_NAME); fixed Go templates, no name is ever
## put into a template or shell text. Output: `records IF SHA256` per interface whose resolver is
## configured and whose records file exists (what it holds, so the controller writes only a file
## that differs), `net NAME ID...` per network found (its running containers' ids), then one JSON
## object per container: id, name, compose service label and its networks (Docker's own JSON,
## keyed by network name). A network that does not exist is simply not listed. Exit 69
## (DOCKER_DOWN_EXIT) when the Docker daemon does not answer.
set -u
set -f
command -v docker >/dev/null 2>&1 || { echo "docker: command not found" >&2; exit 127; }
files=${1:-0}
case $files in *[!0-9]*) echo "bad count" >&2; exit 2 ;; esac
[ $# -gt 0 ] && shift
while [ "$files" -gt 0 ] && [ $# -gt 0 ]; do
  ifc=$1
  shift
  files=$((files - 1))
  case $ifc in ''|.*|*/*) continue ;; esac
  dir=/etc/dockmesh/dns/$ifc
  if [ ! -f "$dir/dnsmasq.conf" ] || [ ! -f "$dir/records/mesh" ]; then continue; fi
  # No sha256sum on the host: no line, and the controller writes the file as it would anyway.
  sum=$(sha256sum <"$dir/records/mesh" 2>/dev/null) && printf 'records %s %s\n' "$ifc" "${sum%% *}"
done
[ $# -gt 0 ] || exit 0
out=$(docker network inspect --format '{{.Name}}{{range $id, $c := .Containers}} {{$id}}{{end}}' "$@" 2>/dev/null)
rc=$?
if [ "$rc" -ne 0 ] && [ -z "$out" ]; then
  docker version >/dev/null 2>&1 || { echo "the Docker daemon does not answer" >&2; exit 69; }
fi
ids=""
printf '%s\n' "$out" | while IFS= read -r line; do [ -n "$line" ] && printf 'net %s\n' "$line"; done
for id in $out; do
  case $id in *[!0-9a-f]*) continue ;; esac
  [ ${#id} -eq 64 ] || continue
  case " $ids " in *" $id "*) continue ;; esac
  ids="$ids $id"
done
[ -n "$ids" ] || exit 0
# shellcheck disable=SC2086 # one argument per id (64 hex digits each, checked above)
docker inspect --type container --format '{"id":{{json .Id}},"name":{{json .Name}},"service":{{json (index .Config.Labels "com.docker.compose.service")}},"networks":{{json .NetworkSettings.Networks}}}' $ids 2>/dev/null
exit 0
