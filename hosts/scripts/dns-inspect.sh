#!/bin/sh
## The look at a host's containers on the meshes' Docker networks (hosts/dns-inspect.ts, issue 13).
## Arguments: the network names (checked by DOCKER_NETWORK_NAME); fixed Go templates, no name is
## ever put into a template or shell text. Output: `net NAME ID...` per network found (its running
## containers' ids), then one JSON object per container: id, name, compose service label and
## its networks (Docker's own JSON, keyed by network name). A network that does not exist is
## simply not listed. Exit 69 (DOCKER_DOWN_EXIT) when the Docker daemon does not answer.
set -u
set -f
command -v docker >/dev/null 2>&1 || { echo "docker: command not found" >&2; exit 127; }
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
