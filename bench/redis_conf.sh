#!/bin/sh
#   bench/redis_conf.sh DIR PORT: the redis-server configuration of the
#   bench (bench/run.sh; tests/bench_tools.test.sh checks it), on stdout.
#
#   Loopback only, durable: the append-only file fsynced on every write,
#   before Redis answers anyone; no RDB snapshots (the AOF is the store).
#   Redis's own defaults otherwise (AOF rewrites included), as a deployment
#   runs it. One ACL user per agent, password pw-NAME (bench/redis_load.c
#   knows the convention), the default user off:
#     sK  may only XADD, only to bench:rK (the stream of the recipient its
#         edge names), and may not read it: %W is write-only
#     rK  may only XREADGROUP, XACK and XTRIM (what it acknowledged), only
#         on its own stream bench:rK
#     admin  sets up the streams and consumer groups
set -eu
[ $# -eq 2 ] || { echo "usage: bench/redis_conf.sh DIR PORT" >&2; exit 2; }
cat <<CONF
bind 127.0.0.1
port $2
protected-mode yes
daemonize no
dir "$1"
logfile ""
appendonly yes
appendfsync always
save ""
user default off
user admin on >pw-admin ~* &* +@all
CONF
for k in 1 2 3 4; do
    echo "user s$k on >pw-s$k resetkeys %W~bench:r$k resetchannels -@all +xadd"
    echo "user r$k on >pw-r$k resetkeys ~bench:r$k resetchannels -@all +xreadgroup +xack +xtrim"
done
