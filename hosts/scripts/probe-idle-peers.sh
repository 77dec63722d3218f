# shellcheck shell=sh
## Probes idle peers: shell functions for observe.sh and liveness.sh. probe_start reads
## "iface source publickey address [w|r]" lines on stdin, after an optional "@wait N" line, and
## starts the probes without waiting for them; probe_finish waits for the probes, then for the
## peers marked w or r (being configured at this moment, as the controller knows), up to N
## tenths of a second, until each has handshaken, and initiates again to those marked r
## (probe_again) (hosts/observe.ts probeInput writes these lines). The observe reads the rest of
## the host between the two, so that work overlaps the handshakes; `wg show` comes after
## probe_finish. With no line at all (a first converge, a host without peers) they start no
## process.

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
# A probe not waited for: detached from the script's input and output, so that it holds nothing
# of the SSH session open.
probe_detached() { probe "$1" "$2" </dev/null >/dev/null 2>&1 & }
probe_wait_for=0
probe_waiting=
probe_retry=
probe_pids=
probe_nl='
'
# One "wg show" for every interface and peer (not one per peer: a host with a thousand peers
# would run a thousand, each printing a thousand lines), joined with the candidates in awk. The
# probes of idle peers are this shell's children (the loop reads a here-document, in this
# shell), so that probe_finish can wait for them.
probe_start() {
  if IFS= read -r first; then
    case "$first" in
      "@wait "*) probe_wait_for=${first#@wait }; case "$probe_wait_for" in '' | *[!0-9]*) probe_wait_for=0 ;; esac; IFS= read -r first || first= ;;
    esac
  fi
  [ -n "${first:-}" ] || return 0
  now=$(date +%s)
  idle=$({ wg show all latest-handshakes 2>/dev/null | sed 's/^/h /'; printf 'p %s\n' "$first"; sed 's/^/p /'; } |
    awk -v now="$now" '$1 == "h" { t[$2 " " $3] = $4; next } $1 == "p" && ($2 " " $4) in t && now - t[$2 " " $4] >= 120 { print $2, $4, $3, $5, $6 }')
  while read -r pi pk pb pa pw; do
    [ -n "$pi" ] || continue
    case "$pw" in
      w | r)
        # Its handshake is waited for below, not its ping.
        probe_detached "$pb" "$pa"
        probe_waiting="${probe_waiting:+$probe_waiting$probe_nl}$pi $pk"
        if [ "$pw" = r ]; then probe_retry="$probe_retry$pi $pk $pb $pa$probe_nl"; fi ;;
      *) probe "$pb" "$pa" & probe_pids="$probe_pids $!" ;;
    esac
  done <<PROBES
$idle
PROBES
}
# Peers being configured right now come up within seconds, and their own probes make the
# handshake: wait for them here rather than report them missing and look again later.
probe_finish() {
  # shellcheck disable=SC2086 # one argument per pid
  [ -z "$probe_pids" ] || wait $probe_pids
  n=0
  while [ -n "$probe_waiting" ] && [ "$n" -lt "$probe_wait_for" ]; do
    hs=$(wg show all latest-handshakes 2>/dev/null)
    if printf '%s\n' "$hs" | awk -v want="$probe_waiting" 'BEGIN { k = split(want, l, "\n"); for (i = 1; i <= k; i++) w[l[i]] = 1 } ($1 " " $2) in w && $3 > 0 { ok[$1 " " $2] = 1 } END { for (x in w) if (!(x in ok)) exit 1 }'; then break; fi
    # Again 0.2 s into the wait (the host was read since the probes: a handshake on its way has
    # had its round trip), then every half second.
    if [ -n "$probe_retry" ] && [ $((n % 5)) -eq 2 ]; then probe_again "$probe_nl$hs$probe_nl"; fi
    sleep 0.1; n=$((n + 1))
  done
}
# Two ends that initiate at once (both configured at the same moment, each probing the other)
# each answer the other's initiation and then drop the answer to their own: neither has a
# session, and WireGuard initiates again only after 5 s (REKEY_TIMEOUT). The pair's end the
# controller marks r (one end of each pair: hosts/observe.ts Probe.retry) re-adds the peer with
# the same settings, which clears that wait, and pings again; the other end, which does not
# initiate again within the 5 s, answers. Only a peer with an endpoint and no preshared key (all
# a re-add restores). $1: `wg show all latest-handshakes`, a newline before and after.
probe_again() {
  while read -r ri rk rb ra; do
    [ -n "$ri" ] || continue
    case "$1" in *"$probe_nl$ri	$rk	0$probe_nl"*) ;; *) continue ;; esac
    cfg=$(wg show "$ri" dump 2>/dev/null | awk -F '\t' -v k="$rk" 'NF == 8 && $1 == k && $2 == "(none)" && $3 != "(none)" { a = ($4 == "(none)") ? "" : $4; print $3 "\t" a "\t" $8; exit }')
    [ -n "$cfg" ] || continue
    ep=${cfg%%	*}; rest=${cfg#*	}; aips=${rest%%	*}; ka=${rest#*	}
    wg set "$ri" peer "$rk" remove 2>/dev/null || continue
    wg set "$ri" peer "$rk" endpoint "$ep" allowed-ips "$aips" persistent-keepalive "$ka" 2>/dev/null
    probe_detached "$rb" "$ra"
  done <<RETRY
$probe_retry
RETRY
}
