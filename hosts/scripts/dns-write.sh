#!/bin/sh
## Writing the records files of mesh DNS (hosts/dns-write.ts, issue 13): one command per host per
## batch, covering all its meshes. Arguments: the total byte count, then per mesh its interface
## (INTERFACE_NAME) and the byte count of its file; the files' contents, one after another, on
## standard input. Each file is written atomically: to /etc/dockmesh/dns/IF/.mesh.tmp (outside
## records/, which dnsmasq watches; DNS_DIR), mode 0644, then `mv -f` into records/, unless it is
## byte for byte what is there. A mesh whose resolver is not configured yet (no
## /etc/dockmesh/dns/IF/dnsmasq.conf) gets nothing; the script prints "noresolver IF" and exits
## with 3 (NO_RESOLVER_EXIT) after writing the others.
set -u
umask 022
total=$1
shift
case $total in ''|*[!0-9]*) echo "bad total" >&2; exit 2 ;; esac
in=$(mktemp) || exit 1
trap 'rm -f "$in"' EXIT
cat >"$in" || exit 1
got=$(wc -c <"$in")
[ "$got" -eq "$total" ] || { echo "expected $total bytes on input, got $got" >&2; exit 2; }
off=1
missing=0
while [ $# -ge 2 ]; do
  ifc=$1
  len=$2
  shift 2
  case $ifc in ''|.*|*/*) echo "bad interface" >&2; exit 2 ;; esac
  case $len in ''|*[!0-9]*) echo "bad length" >&2; exit 2 ;; esac
  dir=/etc/dockmesh/dns/$ifc
  if [ ! -f "$dir/dnsmasq.conf" ]; then
    echo "noresolver $ifc"
    missing=1
  else
    mkdir -p "$dir/records" || exit 1
    tail -c +"$off" "$in" | head -c "$len" >"$dir/.mesh.tmp" || exit 1
    chmod 0644 "$dir/.mesh.tmp" || exit 1
    if cmp -s "$dir/.mesh.tmp" "$dir/records/mesh"; then
      rm -f "$dir/.mesh.tmp"
      echo "unchanged $ifc"
    else
      mv -f "$dir/.mesh.tmp" "$dir/records/mesh" || exit 1
      echo "written $ifc"
    fi
  fi
  off=$((off + len))
done
[ "$missing" -eq 0 ] || exit 3
exit 0
