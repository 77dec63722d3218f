#!/bin/sh
## The Ready check (hosts/liveness.ts): between full resyncs, a Ready Machine's host is looked at
## with one light command (no Docker, no iptables): are its WireGuard interfaces there and up, and
## when did each peer last handshake. Idle peers are probed first, as the observe does, so an idle
## link still handshakes.
## Arguments: the interface names. Standard input: the peers to probe (probe-idle-peers.sh).
## Output: "@@wg" and `wg show all dump`, "@@links" and the interfaces' `ip -o link` lines, "@@end".

export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
## Inlined when sent, like every ". ./NAME.sh" line here: the host gets one script.
. ./probe-idle-peers.sh
probe_start
probe_finish

echo "@@wg"
. ./wg-dump.sh
echo "@@links"
for i in "$@"; do ip -o link show dev "$i" 2>/dev/null; done
echo "@@end"
