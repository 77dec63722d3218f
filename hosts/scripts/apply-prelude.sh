# shellcheck shell=sh
## The apply prelude: the shell functions that apply steps call (hosts/steps.ts renders the
## steps, mesh/commands.ts plans them). The apply script is this, then per step a `step N` line
## and one call of a function below with single-quoted arguments; file contents (private keys
## among them) come on stdin, one base64 line per file, so no secret ever appears in a command
## line, a process list or a log. `set -eu` ends the steps at the first that fails, and the last
## "@@step N" line printed says which one it was.

set -eu
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 077
step() { printf '@@step %s\n' "$1"; }
# The diff saw no such network, so create first (each docker CLI call costs ~80 ms of CPU); one
# that appeared meanwhile is as good, and a real failure is run again for its message.
# Docker finds a network by id prefix too: "inspect a" answers for a network whose id starts with
# "a" when none is named a. has_network asks for the name itself.
has_network() {
  [ "$(docker network inspect --format '{{.Name}}' "$1" 2>/dev/null)" = "$1" ]
}
ensure_network() {
  n=$1; shift
  docker network create "$@" "$n" >/dev/null 2>&1 || has_network "$n" || docker network create "$@" "$n" >/dev/null
}
remove_network() {
  has_network "$1" || return 0
  for c in $(docker network inspect -f '{{range $k, $v := .Containers}}{{$k}} {{end}}' "$1"); do
    docker network disconnect -f "$1" "$c"
  done
  docker network rm "$1" >/dev/null
}
# A file from the next stdin line (base64): written to a new file beside it (noclobber: never one
# that exists, nor a link), created with its mode where a umask gives it, then renamed over it.
# Two processes (base64, mv), and mkdir when the directory is missing.
wf_n=0
write_file() {
  IFS= read -r line || { echo "no content on stdin for $1" >&2; return 1; }
  d=${1%/*}
  # shellcheck disable=SC2174 # -m for the deepest directory only, as meant: parents get umask 077
  [ -d "${d:-/}" ] || mkdir -p -m "$3" "$d"
  wf_n=$((wf_n + 1)); tmp="$1.dockmesh.$$.$wf_n"
  case "$2" in 600) um=077 ;; 644) um=022 ;; *) um= ;; esac
  (set -C; if [ -n "$um" ]; then umask "$um"; fi; base64 -d > "$tmp") <<EOF || { rm -f "$tmp"; return 1; }
$line
EOF
  if [ -z "$um" ]; then chmod "$2" "$tmp"; fi
  mv -f "$tmp" "$1"
}
remove_file() { rm -f "$1"; d=${1%/*}; case "$d" in *.service.d) rmdir "$d" 2>/dev/null || true ;; esac; }
wg_up() { wg-quick up "$1" 2>&1; }
wg_down() {
  ip link show dev "$1" >/dev/null 2>&1 || return 0
  if [ -f "/etc/wireguard/$1.conf" ]; then wg-quick down "$1" 2>&1 || ip link del dev "$1"; else ip link del dev "$1"; fi
}
wg_sync() {
  tmp=$(mktemp)
  wg-quick strip "$1" > "$tmp"
  wg syncconf "$1" "$tmp" || { rm -f "$tmp"; return 1; }
  rm -f "$tmp"
}
link_up() { ip link set dev "$1" up; }
link_mtu() { ip link set dev "$1" mtu "$2"; }
route_replace() { ip route replace "$1" dev "$2"; }
route_del() { ip route del "$1" dev "$2" 2>/dev/null || true; }
# A table named with a trailing 6 is ip6tables' ("filter6": ip6tables -t filter; mesh/plan.ts tableToken).
ipt() { case "$1" in *6) ipt_t=${1%6}; shift; ip6tables -w -t "$ipt_t" "$@" ;; *) ipt_t=$1; shift; iptables -w -t "$ipt_t" "$@" ;; esac; }
own_chain() { case "$2" in DOCKMESH-*) ipt "$1" -N "$2" 2>/dev/null || true ;; esac; }
ensure_rule() { t=$1; c=$2; shift 2; own_chain "$t" "$c"; ipt "$t" -C "$c" "$@" 2>/dev/null || ipt "$t" -I "$c" "$@"; }
replace_rule() { t=$1; c=$2; shift 2; own_chain "$t" "$c"; while ipt "$t" -D "$c" "$@" 2>/dev/null; do :; done; ipt "$t" -I "$c" "$@"; }
drop_chain() { ipt "$1" -F "$2" 2>/dev/null || true; ipt "$1" -X "$2" 2>/dev/null || true; }
delete_rule() { t=$1; c=$2; shift 2; while ipt "$t" -D "$c" "$@" 2>/dev/null; do :; done; }
enable_unit() {
  if command -v systemctl >/dev/null 2>&1; then systemctl enable "wg-quick@$1.service" 2>&1
  else mkdir -p /etc/systemd/system/multi-user.target.wants && ln -sf /lib/systemd/system/wg-quick@.service "/etc/systemd/system/multi-user.target.wants/wg-quick@$1.service"; fi
}
disable_unit() {
  if command -v systemctl >/dev/null 2>&1; then systemctl disable "wg-quick@$1.service" 2>&1 || true; fi
  rm -f "/etc/systemd/system/multi-user.target.wants/wg-quick@$1.service"
}
daemon_reload() { if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; }
# The mesh DNS resolver of interface $1: dnsmasq with /etc/dockmesh/dns/$1/dnsmasq.conf, under
# systemd as dockmesh-dns-$1.service, else started directly (it daemonises, with a pid file).
dns_pid() {
  [ -f "/run/dockmesh-dns-$1.pid" ] || return 1
  p=$(head -c 12 "/run/dockmesh-dns-$1.pid" 2>/dev/null)
  case "$p" in '' | *[!0-9]*) return 1 ;; esac
  grep -qaF -- "/etc/dockmesh/dns/$1/dnsmasq.conf" "/proc/$p/cmdline" 2>/dev/null && echo "$p"
}
dns_kill() {
  p=$(dns_pid "$1") || return 0
  kill "$p" 2>/dev/null || return 0
  n=0; while kill -0 "$p" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
}
dns_up() {
  # dnsmasq reads its records as the unprivileged user it drops to: the directories must let it
  # in (write_file made the parents under umask 077). They hold no secret.
  [ -d "/etc/dockmesh/dns/$1/records" ] || (umask 022; mkdir -p "/etc/dockmesh/dns/$1/records")
  chmod 755 /etc/dockmesh /etc/dockmesh/dns "/etc/dockmesh/dns/$1" "/etc/dockmesh/dns/$1/records"
  if [ -d /run/systemd/system ]; then systemctl restart "dockmesh-dns-$1.service" 2>&1; return; fi
  dns_kill "$1"
  /usr/sbin/dnsmasq --conf-file="/etc/dockmesh/dns/$1/dnsmasq.conf" 2>&1
}
dns_down() {
  if [ -d /run/systemd/system ]; then systemctl stop "dockmesh-dns-$1.service" 2>/dev/null || true; fi
  dns_kill "$1"
  rm -f "/run/dockmesh-dns-$1.pid"
}
dns_enable() {
  if command -v systemctl >/dev/null 2>&1; then systemctl enable "dockmesh-dns-$1.service" 2>&1
  else mkdir -p /etc/systemd/system/multi-user.target.wants && ln -sf "/etc/systemd/system/dockmesh-dns-$1.service" "/etc/systemd/system/multi-user.target.wants/dockmesh-dns-$1.service"; fi
}
dns_disable() {
  if command -v systemctl >/dev/null 2>&1; then systemctl disable "dockmesh-dns-$1.service" 2>&1 || true; fi
  rm -f "/etc/systemd/system/multi-user.target.wants/dockmesh-dns-$1.service"
}
dns_clean() {
  rm -f "/etc/dockmesh/dns/$1/.mesh.tmp"
  rmdir "/etc/dockmesh/dns/$1/records" "/etc/dockmesh/dns/$1" 2>/dev/null || true
  rmdir /etc/dockmesh/dns 2>/dev/null || true
}
resolved_reload() { if [ -d /run/systemd/system ]; then systemctl try-reload-or-restart systemd-resolved.service 2>&1 || true; fi; }
