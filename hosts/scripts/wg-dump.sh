# shellcheck shell=sh
## Every WireGuard interface and peer in one `wg show` (handshake, bytes, endpoint, allowed IPs),
## with the interfaces' private keys blanked on the host before anything is sent back (an
## interface's line has 5 fields, its private key the second). Included by observe.sh and
## liveness.sh; hosts/observe.ts parseWgDump reads it.
wg show all dump 2>/dev/null | awk 'BEGIN { FS = OFS = "\t" } NF == 5 { $2 = "(hidden)" } { print }'
