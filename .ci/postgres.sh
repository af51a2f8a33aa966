#!/usr/bin/env bash
# Debian's PostgreSQL for the tests of the PostgreSQL store and of several
# replicas (store/postgres, cmd/c2bot replica tests):
#
#   bash .ci/postgres.sh install            # apt-get install postgresql when missing
#   eval "$(bash .ci/postgres.sh start DIR)" # a throwaway cluster in DIR, on loopback
#   bash .ci/postgres.sh stop DIR
#
# start prints the exports the tests read:
#   C2_TEST_POSTGRES   URL of the cluster's "postgres" database (each test
#                      creates a database of its own in it; the tests that
#                      restart PostgreSQL start a private cluster instead)
# The cluster listens on 127.0.0.1 only, on a free port, with trust
# authentication (it is throwaway and loopback-only), and runs as the
# "postgres" user when started by root.
set -euo pipefail

bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
	if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
		echo "PostgreSQL server binaries not found under /usr/lib/postgresql (bash .ci/postgres.sh install)" >&2
		return 1
	fi
	echo "$d"
}

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

cmd=${1:-}
case "$cmd" in
install)
	if bindir >/dev/null 2>&1; then
		echo "postgresql already installed: $(bindir)" >&2
		exit 0
	fi
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update >&2
	"${sudo[@]}" apt-get install -y --no-install-recommends postgresql >&2
	echo "postgresql installed: $(bindir)" >&2
	;;
start)
	dir=${2:?usage: postgres.sh start DIR}
	bin=$(bindir)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres:postgres "$dir"
	fi
	as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	port=
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			port=$p
			break
		fi
	done
	[ -n "$port" ] || { echo "no free port found" >&2; exit 1; }
	cat >"$dir/ctl" <<CTL
#!/usr/bin/env bash
# stop|start|restart the throwaway test cluster in $dir
set -euo pipefail
run() { if [ "\$(id -u)" -eq 0 ]; then runuser -u postgres -- "\$@"; else "\$@"; fi; }
case "\${1:?stop|start|restart}" in
stop) run "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >>"$dir/server.log" 2>&1 ;;
start|restart) run "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
	-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=off" "\$1" >/dev/null ;;
esac
CTL
	chmod 0755 "$dir/ctl"
	bash "$dir/ctl" start || { cat "$dir/server.log" >&2; exit 1; }
	echo "export C2_TEST_POSTGRES='postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable'"
	;;
stop)
	dir=${2:?usage: postgres.sh stop DIR}
	if [ -x "$dir/ctl" ]; then
		bash "$dir/ctl" stop || true
	fi
	rm -rf "$dir"
	;;
*)
	echo "usage: postgres.sh install | start DIR | stop DIR" >&2
	exit 2
	;;
esac
