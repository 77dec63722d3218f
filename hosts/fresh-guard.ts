// The guard of a first converge in one round trip (hosts/fresh.ts): before applying a plan made
// from guessed host facts, the script checks on the host that it has nothing of ours under those
// names and that the facts the plan depends on are the guessed ones. When anything differs it
// applies nothing ("@@fresh-skip <why>", exit 3), and the observe that follows in the same
// script gives the controller what it needs for an ordinary pass. Only an optimisation: the
// controller diffs the host after the script either way, so a guard that judged wrong costs
// another pass, never a wrong end state.
import { DEFAULT_UPLINK_MTU } from "../mesh/defaults.js";

/** The line the guard prints when it applies nothing; the rest of the line says why. */
export const FRESH_SKIP = "@@fresh-skip";

/**
 * Shell functions for the apply script's prelude. Each check mirrors what the controller derives
 * from an observation (hosts/observe.ts hostFacts, uplinkMtu; mesh/dns-plan.ts decideMode), with
 * the host's own tools and mostly shell builtins: `ip` ×2, `iptables` ×3, `wg` ×1 (about 10 ms of
 * CPU). fresh_guard's arguments: uplink MTU (or "-": any), raw table, INPUT drops, systemd,
 * dnsmasq (or "-"), systemd-resolved as the resolver (or "-"), each "yes"/"no"; then the
 * interface names that must not exist yet.
 */
export const FRESH_PRELUDE = String.raw`
nl='
'
fresh_skip() { printf '${FRESH_SKIP} %s\n' "$*"; exit 3; }
fresh_guard() {
  g_mtu=$1; g_raw=$2; g_drops=$3; g_systemd=$4; g_dnsmasq=$5; g_resolved=$6; shift 6
  for c in docker wg wg-quick iptables ip; do command -v "$c" >/dev/null 2>&1 || fresh_skip "$c is not installed"; done
  links=$(ip -o link show 2>/dev/null) || fresh_skip "ip link show failed"
  for i in "$@"; do
    case "$links" in *": $i: "* | *": $i@"*) fresh_skip "interface $i exists" ;; esac
  done
  if [ -d /run/systemd/system ]; then s=yes; else s=no; fi
  [ "$s" = "$g_systemd" ] || fresh_skip "systemd runs the host: $s"
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
      set -- $l
      [ "@{4:-}" = mtu ] || continue
      n=@{2%:}; n=@{n%%@*}; lm=@{5:-}
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
    if [ -n "$dev" ] && [ -n "$dmtu" ] && [ "$dmtu" -gt 0 ]; then mtu=$dmtu; else mtu=@{best:-${DEFAULT_UPLINK_MTU}}; fi
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
`.replaceAll("@{", "${");

/** The facts a plan depends on, as the guard's arguments ("-": not checked). */
export interface GuardFacts {
  uplinkMtu?: number;
  rawTable: boolean;
  inputDrops: boolean;
  systemd: boolean;
  /** Whether dnsmasq must be installed, when a planned mesh has DNS. */
  dnsmasq?: boolean;
  /** Whether systemd-resolved must be the resolver, when a planned mesh has DNS. */
  resolved?: boolean;
}

const yn = (b: boolean | undefined): string => (b === undefined ? "-" : b ? "yes" : "no");

/** fresh_guard's arguments, in its order, then the interfaces. */
export function guardArgs(f: GuardFacts, ifaces: readonly string[]): string[] {
  return [f.uplinkMtu === undefined ? "-" : String(Math.trunc(f.uplinkMtu)), yn(f.rawTable), yn(f.inputDrops), yn(f.systemd), yn(f.dnsmasq), yn(f.resolved), ...ifaces];
}
