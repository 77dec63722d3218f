# shellcheck shell=sh
## Probes idle peers, then nothing else: included by observe.sh and liveness.sh (the Ready
## check). Reads "iface source publickey address [w]" lines on stdin, after an optional
## "@wait N" line: the peers marked w (being configured at this moment, as the controller knows)
## are waited for after the probes, up to N tenths of a second, until each has handshaken
## (hosts/observe.ts probeInput writes these lines). With no line at all (a first converge, a
## host without peers) it starts no process.

# Probe peers without a recent handshake: one ping from our bridge's address to the peer's goes
# through the tunnel and makes WireGuard handshake, so handshake state reflects reachability even
# on idle links. Only peers idle for 2 minutes are probed; a peer the interface does not have
# (yet) is not: it cannot handshake. Without ping (minimal images), bash's /dev/udp sends one
# datagram instead, which is enough to make WireGuard handshake.
probe() {
  if command -v ping >/dev/null 2>&1; then ping -c 1 -W 1 -I "$1" "$2" >/dev/null 2>&1
  elif command -v bash >/dev/null 2>&1; then bash -c 'printf x > "/dev/udp/$0/9"' "$2" 2>/dev/null; sleep 1
  fi
}
# One "wg show" for every interface and peer (not one per peer: a host with a thousand peers
# would run a thousand, each printing a thousand lines), joined with the candidates in awk.
wait_for=0
if IFS= read -r first; then
  case "$first" in
    "@wait "*) wait_for=${first#@wait }; case "$wait_for" in '' | *[!0-9]*) wait_for=0 ;; esac; IFS= read -r first || first= ;;
  esac
fi
if [ -n "${first:-}" ]; then
  now=$(date +%s)
  waiting=$({ wg show all latest-handshakes 2>/dev/null | sed 's/^/h /'; printf 'p %s\n' "$first"; sed 's/^/p /'; } |
    awk -v now="$now" '$1 == "h" { t[$2 " " $3] = $4; next } $1 == "p" && ($2 " " $4) in t && now - t[$2 " " $4] >= 120 { print $2, $4, $3, $5, $6 }' |
    { while read -r pi pk pb pa pw; do probe "$pb" "$pa" & if [ "$pw" = w ]; then echo "$pi $pk"; fi; done; wait; })
  # Peers being configured right now come up within seconds, and their own probes make the
  # handshake: wait for them here rather than report them missing and look again later.
  n=0
  while [ -n "$waiting" ] && [ "$n" -lt "$wait_for" ]; do
    if wg show all latest-handshakes 2>/dev/null | awk -v want="$waiting" 'BEGIN { k = split(want, l, "\n"); for (i = 1; i <= k; i++) w[l[i]] = 1 } ($1 " " $2) in w && $3 > 0 { ok[$1 " " $2] = 1 } END { for (x in w) if (!(x in ok)) exit 1 }'; then break; fi
    sleep 0.1; n=$((n + 1))
  done
fi
