#!/bin/sh
## The one long-lived command per host of mesh DNS (hosts/docker-events.ts, issue 13): Docker's
## event stream, filtered to what changes a container's presence, name or addresses on a network
## (EVENT_FILTERS). No arguments. It prints "dockmesh-events-ready SECONDS" (READY_MARKER, with
## the host's clock), then one line per event. `--since` replays what happened between that line
## and `docker events` subscribing, so nothing falls in between (the controller's full look
## follows the marker). It ends `docker events` when its standard input closes (the controller
## went or closed the channel), so nothing is left running on the host, and exits with docker's
## status when the event stream ends by itself (Docker restarted).
set -u
command -v docker >/dev/null 2>&1 || { echo "docker: command not found" >&2; exit 127; }
exec 3<&0
since=$(date +%s)
docker events --since "$since" --format '{{.Type}} {{.Action}}' \
  --filter type=container --filter type=network \
  --filter event=start --filter event=die --filter event=rename --filter event=destroy --filter event=connect --filter event=disconnect &
pid=$!
echo "dockmesh-events-ready $since"
# An asynchronous list reads /dev/null unless told otherwise: hand it the channel's input as fd 3.
( cat <&3 >/dev/null; kill "$pid" 2>/dev/null ) &
watcher=$!
wait "$pid"
rc=$?
kill "$watcher" 2>/dev/null
exit "$rc"
