# shellcheck shell=sh
## The guard of a first converge in one round trip (hosts/fresh.ts, hosts/fresh-guard.ts): shell
## functions for the apply script, after apply-prelude.sh (fresh_network calls its has_network).
## Before applying a plan made from guessed host facts, fresh_guard checks on the host that it
## has nothing of ours under those names and that the facts the plan depends on are the guessed
## ones; when anything differs it applies nothing ("@@fresh-skip <why>", exit 3: FRESH_SKIP in
## hosts/fresh-guard.ts). Each check mirrors what the controller derives from an observation
## (hosts/observe.ts hostFacts, uplinkMtu; mesh/dns-plan.ts decideMode), with the host's own
## tools and mostly shell builtins: `ip` x2, `iptables` x3, `wg` x1 (about 10 ms of CPU).
## fresh_guard's arguments (guardArgs): uplink MTU (or "-": any), raw table, INPUT drops,
## dnsmasq (or "-"), systemd-resolved as the resolver (or "-"), ip6tables' raw table
## (or "-": no dual-stack mesh; its DOCKER-USER is not checked: the PostUp lines that need it pick
## the chain on the host), each "yes"/"no"; then the interface names that must
## not exist yet. 1500: mesh/defaults.ts DEFAULT_UPLINK_MTU.

nl='
'
fresh_skip() { printf '@@fresh-skip %s\n' "$*"; exit 3; }
fresh_guard() {
  g_mtu=$1; g_raw=$2; g_drops=$3; g_dnsmasq=$4; g_resolved=$5; g_raw6=$6; shift 6
  for c in docker wg wg-quick iptables ip; do command -v "$c" >/dev/null 2>&1 || fresh_skip "$c is not installed"; done
  links=$(ip -o link show 2>/dev/null) || fresh_skip "ip link show failed"
  for i in "$@"; do
    case "$links" in *": $i: "* | *": $i@"*) fresh_skip "interface $i exists" ;; esac
  done
  # Whether systemd runs the host is not a guess: the plan's daemon_reload steps run only where it does.
  if [ -d /run/systemd/system ]; then s=yes; else s=no; fi
  if [ "$g_dnsmasq" != - ]; then
    if [ -x /usr/sbin/dnsmasq ]; then d=yes; else d=no; fi
    [ "$d" = "$g_dnsmasq" ] || fresh_skip "dnsmasq installed: $d"
  fi
  if [ "$g_resolved" != - ]; then
    # systemd-resolved is the resolver: systemd runs the host and the first three nameservers are its stub.
    r=no
    if [ "$s" = yes ] && [ -r /etc/resolv.conf ]; then
      n=0; stub=yes
      while read -r k v rest; do if [ "$k" = nameserver ] && [ "$n" -lt 3 ]; then n=$((n + 1)); [ "$v" = 127.0.0.53 ] || stub=no; fi; done < /etc/resolv.conf
      if [ "$n" -gt 0 ] && [ "$stub" = yes ]; then
        v=$(systemctl --version 2>/dev/null) || v=
        case "$v" in "systemd "[0-9]*) r=yes ;; esac
      fi
    fi
    [ "$r" = "$g_resolved" ] || fresh_skip "systemd-resolved is the resolver: $r"
  fi
  iptables -w -t filter -S DOCKER-USER >/dev/null 2>&1 || fresh_skip "iptables chain DOCKER-USER is missing"
  if iptables -w -t raw -S PREROUTING >/dev/null 2>&1; then r=yes; else r=no; fi
  [ "$r" = "$g_raw" ] || fresh_skip "iptables raw table: $r"
  if [ "$g_raw6" != - ]; then
    if ip6tables -w -t raw -S PREROUTING >/dev/null 2>&1; then r=yes; else r=no; fi
    [ "$r" = "$g_raw6" ] || fresh_skip "ip6tables raw table: $r"
  fi
  input=$(iptables -w -t filter -S INPUT 2>/dev/null) || fresh_skip "iptables -S INPUT failed"
  # INPUT drops what it does not allow: policy DROP, or a DROP/REJECT that matches everything.
  d=no
  case "$nl$input$nl" in *"$nl-P INPUT DROP$nl"* | *"$nl-A INPUT -j DROP$nl"* | *"$nl-A INPUT -j DROP "* | *"$nl-A INPUT -j REJECT$nl"* | *"$nl-A INPUT -j REJECT "*) d=yes ;; esac
  [ "$d" = "$g_drops" ] || fresh_skip "INPUT drops: $d"
  if [ "$g_mtu" != - ]; then
    # The uplink: the (last) default route's device, else the smallest MTU among links that are
    # up and look physical (not lo, br-*, docker*, veth*, wg*, dm*, nor a WireGuard interface).
    set -f
    dev=; p=
    for w in $(ip route show default 2>/dev/null); do
      if [ "$w" = nexthop ]; then fresh_skip "a multipath default route"; fi
      if [ "$p" = dev ]; then dev=$w; fi
      p=$w
    done
    wgifs=" "
    for w in $(wg show interfaces 2>/dev/null); do wgifs="$wgifs$w "; done
    dmtu=; best=
    while IFS= read -r l; do
      # shellcheck disable=SC2086 # split into words on purpose (globbing is off: set -f)
      set -- $l
      [ "${4:-}" = mtu ] || continue
      n=${2%:}; n=${n%%@*}; lm=${5:-}
      case "$lm" in '' | *[!0-9]*) continue ;; esac
      if [ "$n" = "$dev" ]; then dmtu=$lm; fi
      case "$n" in lo | br-* | docker* | veth* | wg* | dm*) continue ;; esac
      case "$3" in *"<UP,"* | *",UP,"* | *",UP>"* | "<UP>") ;; *) continue ;; esac
      case "$wgifs" in *" $n "*) continue ;; esac
      if [ -z "$best" ] || [ "$lm" -lt "$best" ]; then best=$lm; fi
    done <<EOF
$links
EOF
    set +f
    if [ -n "$dev" ] && [ -n "$dmtu" ] && [ "$dmtu" -gt 0 ]; then mtu=$dmtu; else mtu=${best:-1500}; fi
    [ "$mtu" = "$g_mtu" ] || fresh_skip "uplink MTU $mtu"
  fi
}
# The network of a first converge: created, or the guard's verdict when one of that name exists.
fresh_network() {
  n=$1; shift
  docker network create "$@" "$n" >/dev/null 2>&1 && return 0
  if has_network "$n"; then fresh_skip "Docker network $n exists"; fi
  docker network create "$@" "$n" >/dev/null
}
