#!/bin/sh
# Runs a test binary in a network namespace of its own (nothing else on its network), loopback
# up, with net.ipv4.tcp_migrate_req=1: the reload tests replace listeners, and without that sysctl a
# connection landing in a replaced listener's queue between its last accept and close() is reset
# by the kernel (README "Changing the config"; measured both ways by service-tcp-migrate-req).
# The sysctl is per namespace, so the host's stays untouched. Where no namespace can be made,
# the test runs in the host's namespace as it is, and says so.
if unshare -n true 2>/dev/null; then
  exec unshare -n sh -c 'ip link set lo up && sysctl -qw net.ipv4.tcp_migrate_req=1 && exec "$@"' \
    in_own_netns "$@"
fi
echo "in_own_netns: cannot create a network namespace here; running in the host's (tcp_migrate_req=$(cat /proc/sys/net/ipv4/tcp_migrate_req 2>/dev/null || echo unknown))" >&2
exec "$@"
