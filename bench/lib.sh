# Shared by bench/run.sh and bench/net_effect.sh: the postgres OS user, the
# throwaway clusters (the same settings on both but for
# shared_preload_libraries), and psql on them.  Source it after setting
# BINDIR and WORK.

as_postgres() { su postgres -s /bin/sh -c "$*"; }

start_cluster() {
	local name=$1 preload=$2 dir=$WORK/$1
	mkdir -p "$dir" && chown postgres: "$dir"
	as_postgres "'$BINDIR/initdb' -D '$dir/data' -A trust -U postgres >'$dir/initdb.log' 2>&1"
	cat >>"$dir/data/postgresql.conf" <<CONF
# bench/: the same on both clusters but for shared_preload_libraries
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
lc_messages = 'C'
fsync = off
shared_buffers = 256MB
max_connections = 120
max_wal_size = 4GB
checkpoint_timeout = 30min
log_min_messages = warning
log_line_prefix = '%m [%p] '
CONF
	[ "$preload" = yes ] && echo "shared_preload_libraries = 'rollguard'" >>"$dir/data/postgresql.conf"
	as_postgres "'$BINDIR/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w start >/dev/null"
}
q() {	# q CLUSTER SQL...: psql -At on database bench
	local c=$1
	shift
	PGHOST=$WORK/$c PGPORT=5432 PGUSER=postgres "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -d bench "$@"
}
