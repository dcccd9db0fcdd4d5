#!/usr/bin/env bash
# Start, stop and inspect clickstream's development services without Docker:
# Kafka (KRaft single node, from Maven Central jars), Redis (Debian's redis-server)
# and the reference auth service. Everything they write goes under var/.
# See docs/services.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/services.sh up|down|status [kafka|redis|auth ...]

  up      start the services (all, or the ones named) and wait until each is ready
  down    stop the services this script started, and wait until they have exited
  status  say which services run and answer; exit 1 if one does not answer

Environment (defaults in brackets):
  CLICKSTREAM_KAFKA_BOOTSTRAP  [127.0.0.1:9092]  broker address; the first host:port is used
  CLICKSTREAM_KAFKA_TOPIC      [events]          the topic `up kafka` creates if missing ...
  CLICKSTREAM_KAFKA_PARTITIONS [6]               ... with this many partitions
  KAFKA_CONTROLLER_PORT        [9093]            KRaft controller port
  CLICKSTREAM_REDIS_URL        [redis://127.0.0.1:6379/0]
  CLICKSTREAM_AUTH_URL         [http://127.0.0.1:8001/api/v1/auth/verify]
  CLICKSTREAM_VAR_DIR          [<repo>/var]      jars, data, logs and pid files
  KAFKA_VERSION                [4.4.0]           org.apache.kafka:kafka_2.13 version
  KAFKA_HEAP_OPTS              [-Xms128m -Xmx512m]
  KAFKA_JVM_OPTS               []                more JVM options for the broker
  SERVICES_TIMEOUT             [120]             seconds to wait for a service to be ready
  PYTHON                       [python3]
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAR_DIR=${CLICKSTREAM_VAR_DIR:-$ROOT/var}
PYTHON=${PYTHON:-python3}
TIMEOUT=${SERVICES_TIMEOUT:-120}
ALL_SERVICES=(kafka redis auth)

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_BOOTSTRAP=${CLICKSTREAM_KAFKA_BOOTSTRAP:-127.0.0.1:9092}
KAFKA_TOPIC=${CLICKSTREAM_KAFKA_TOPIC:-events}
KAFKA_PARTITIONS=${CLICKSTREAM_KAFKA_PARTITIONS:-6}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}
KAFKA_JVM_OPTS=${KAFKA_JVM_OPTS:-}
REDIS_URL=${CLICKSTREAM_REDIS_URL:-redis://127.0.0.1:6379/0}
AUTH_URL=${CLICKSTREAM_AUTH_URL:-http://127.0.0.1:8001/api/v1/auth/verify}

KAFKA_DIR=$VAR_DIR/kafka
LOG_DIR=$VAR_DIR/log
RUN_DIR=$VAR_DIR/run

say() { printf '%s\n' "$*"; }
fail() { printf 'services: %s\n' "$*" >&2; exit 1; }

# host and port of "scheme://[user@]host[:port][/path]"
url_host() {
    local rest=${1#*://}
    rest=${rest%%/*}
    rest=${rest##*@}
    printf '%s' "${rest%:*}"
}
url_port() {
    local rest=${1#*://}
    rest=${rest%%/*}
    rest=${rest##*@}
    if [[ $rest == *:* ]]; then printf '%s' "${rest##*:}"; else printf '%s' "$2"; fi
}

first_broker=${KAFKA_BOOTSTRAP%%,*}
KAFKA_HOST=${first_broker%:*}
KAFKA_PORT=${first_broker##*:}
REDIS_HOST=$(url_host "$REDIS_URL")
REDIS_PORT=$(url_port "$REDIS_URL" 6379)
AUTH_HOST=$(url_host "$AUTH_URL")
AUTH_PORT=$(url_port "$AUTH_URL" 80)

for pair in "CLICKSTREAM_KAFKA_BOOTSTRAP:$KAFKA_PORT" "KAFKA_CONTROLLER_PORT:$KAFKA_CONTROLLER_PORT" \
    "CLICKSTREAM_REDIS_URL:$REDIS_PORT" "CLICKSTREAM_AUTH_URL:$AUTH_PORT"; do
    [[ ${pair#*:} =~ ^[0-9]+$ ]] || fail "${pair%%:*}: no valid port in it (got '${pair#*:}')"
done

# --- processes ------------------------------------------------------------------------------

pid_file() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
log_file() { printf '%s/%s.log' "$LOG_DIR" "$1"; }

# Text that the command line of our process contains, so that a pid reused by an
# unrelated process after a reboot or a crash is never taken for ours.
marker() {
    case $1 in
        kafka) printf '%s' "$KAFKA_DIR/server.properties" ;;
        redis) printf 'redis-server' ;;
        auth) printf 'auth_service' ;;
    esac
}

# The pid of the service if this script started it and it still runs; removes stale pid files.
running_pid() {
    local file pid
    file=$(pid_file "$1")
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        if [[ ! -r /proc/$pid/cmdline ]] || tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$(marker "$1")"; then
            printf '%s' "$pid"
            return 0
        fi
    fi
    rm -f "$file"
    return 1
}

# launch NAME LOG COMMAND...: runs COMMAND in the background in a session of its own (so that
# Ctrl-C in the terminal or the end of `make` does not take it down), output appended to LOG.
launch() {
    local name=$1 log=$2
    shift 2
    mkdir -p "$LOG_DIR" "$RUN_DIR"
    printf '\n=== %s: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$log"
    if command -v setsid >/dev/null; then
        (cd "$ROOT" && exec setsid "$@") >>"$log" 2>&1 </dev/null &
    else
        (cd "$ROOT" && exec nohup "$@") >>"$log" 2>&1 </dev/null &
    fi
    printf '%s\n' "$!" >"$(pid_file "$name")"
}

show_log() {
    local file
    for file in "$@"; do
        [[ -f $file ]] || continue
        printf -- '--- last lines of %s\n' "$file" >&2
        # Only this start's lines: launch() begins each start with a "=== " line.
        awk '/^=== / { n = 0 } { lines[n++] = $0 } END { for (i = (n > 30 ? n - 30 : 0); i < n; i++) print lines[i] }' \
            "$file" >&2
    done
}

# wait_ready NAME CHECK LOG...: polls CHECK until it succeeds, the process dies or time runs out.
wait_ready() {
    local name=$1 check=$2 started=$SECONDS pid
    shift 2
    pid=$(<"$(pid_file "$name")")
    until "$check"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$(pid_file "$name")"
            show_log "$@"
            fail "$name exited during start-up (log: $1)"
        fi
        if ((SECONDS - started >= TIMEOUT)); then
            show_log "$@"
            fail "$name not ready after ${TIMEOUT}s; it is left running as pid $pid (log: $1)"
        fi
        sleep 0.5
    done
    say "$name: ready at $(address "$name") (pid $pid, $((SECONDS - started))s, log $1)"
}

stop() {
    local name=$1 pid waited=0 limit=60
    if ! pid=$(running_pid "$name"); then
        if "${name}_ready"; then
            say "$name: not started by this script, left alone ($(address "$name") answers)"
        else
            say "$name: not running"
        fi
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    # A broker's controlled shutdown takes a few seconds; give it time before forcing.
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= limit * 2)); then
            say "$name: still running after ${limit}s, killing pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    rm -f "$(pid_file "$name")"
    say "$name: stopped (pid $pid)"
}

port_open() {
    "$PYTHON" -c 'import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)' "$1" "$2" 2>/dev/null
}

address() {
    case $1 in
        kafka) printf '%s:%s' "$KAFKA_HOST" "$KAFKA_PORT" ;;
        redis) printf '%s:%s' "$REDIS_HOST" "$REDIS_PORT" ;;
        auth) printf 'http://%s:%s' "$AUTH_HOST" "$AUTH_PORT" ;;
    esac
}

# up_common NAME: returns 1 when there is nothing to start (ours or someone else's answers).
up_common() {
    local name=$1 pid host port
    if pid=$(running_pid "$name"); then
        say "$name: already running (pid $pid) at $(address "$name")"
        return 1
    fi
    if "${name}_ready"; then
        say "$name: $(address "$name") already answers (not started by this script); using it"
        return 1
    fi
    host=${name^^}_HOST port=${name^^}_PORT
    if port_open "${!host}" "${!port}"; then
        fail "$name: something that is not $name already listens on ${!host}:${!port}; stop it or choose another port"
    fi
    return 0
}

# --- Kafka ----------------------------------------------------------------------------------

kafka_ready() {
    "$PYTHON" - "$KAFKA_HOST" "$KAFKA_PORT" <<'EOF' >/dev/null 2>&1
import socket, struct, sys

host, port = sys.argv[1], int(sys.argv[2])
# Fails fast when nothing listens; kafka-python would retry for half a minute.
socket.create_connection((host, port), timeout=1).close()
try:
    from kafka import KafkaAdminClient
except ImportError:
    # Without kafka-python (before `pip install`): an ApiVersions request, which a
    # broker only answers once it has finished starting.
    client = b"services.sh"
    header = struct.pack(">hhih", 18, 0, 1, len(client)) + client
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.sendall(struct.pack(">i", len(header)) + header)
        answer = sock.recv(10)
    sys.exit(0 if len(answer) >= 10 and struct.unpack(">iih", answer)[2] == 0 else 1)

# The name of the connection timeout changed in kafka-python 3 (was api_version_auto_timeout_ms).
timeouts = {"bootstrap_timeout_ms": 3000, "api_version_auto_timeout_ms": 3000}
options = {k: v for k, v in timeouts.items() if k in KafkaAdminClient.DEFAULT_CONFIG}
admin = KafkaAdminClient(bootstrap_servers=f"{host}:{port}", request_timeout_ms=3000, **options)
try:
    admin.list_topics()
finally:
    admin.close()
EOF
}

need_java() {
    command -v java >/dev/null ||
        fail "kafka: java not found; install a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)"
    local version major
    version=$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)
    major=${version%%.*}
    [[ $major == 1 ]] && major=$(cut -d. -f2 <<<"$version")
    [[ $major =~ ^[0-9]+$ ]] && ((major >= 17)) ||
        fail "kafka: Kafka $KAFKA_VERSION needs Java 17 or newer, found '${version:-unknown}' (Debian: apt-get install openjdk-17-jdk-headless)"
}

# The broker's jars, fetched from Maven Central once and again when the version or the pom changes.
kafka_lib() {
    local lib=$KAFKA_DIR/lib pom=$ROOT/scripts/kafka/pom.xml stamp
    stamp="$KAFKA_VERSION $(sha256sum "$pom" | cut -d' ' -f1)"
    if [[ -f $lib/.stamp && $(<"$lib/.stamp") == "$stamp" ]]; then
        return 0
    fi
    command -v mvn >/dev/null ||
        fail "kafka: mvn not found; it fetches the Kafka jars once (Debian: apt-get install maven)"
    say "kafka: fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central into $lib"
    rm -rf "$lib.new"
    mvn -q -B -f "$pom" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DoutputDirectory="$lib.new" >"$LOG_DIR/kafka-fetch.log" 2>&1 || {
        show_log "$LOG_DIR/kafka-fetch.log"
        fail "kafka: mvn could not fetch Kafka $KAFKA_VERSION (log: $LOG_DIR/kafka-fetch.log)"
    }
    printf '%s\n' "$stamp" >"$lib.new/.stamp"
    rm -rf "$lib"
    mv "$lib.new" "$lib"
}

# The events topic, with CLICKSTREAM_KAFKA_PARTITIONS partitions (the most ETL processes of
# one group that get work), created before the API could auto-create it with one partition.
kafka_topic() {
    [[ $KAFKA_PARTITIONS =~ ^[1-9][0-9]*$ ]] ||
        fail "CLICKSTREAM_KAFKA_PARTITIONS: not a positive number (got '$KAFKA_PARTITIONS')"
    "$PYTHON" - "$KAFKA_HOST:$KAFKA_PORT" "$KAFKA_TOPIC" "$KAFKA_PARTITIONS" <<'EOF' ||
import sys

try:
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError
except ImportError:
    print(f"kafka: kafka-python missing, topic {sys.argv[2]} not created (make install)")
    sys.exit(0)

bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
try:
    if topic not in admin.list_topics():
        try:
            admin.create_topics([NewTopic(topic, partitions, 1)])
            print(f"kafka: topic {topic} created with {partitions} partitions")
        except TopicAlreadyExistsError:
            pass
finally:
    admin.close()
consumer = KafkaConsumer(bootstrap_servers=bootstrap)
try:
    found = len(consumer.partitions_for_topic(topic) or ())
finally:
    consumer.close()
if found < partitions:
    print(
        f"kafka: topic {topic} has {found} partition(s), not {partitions}: at most {found} ETL "
        "processes of a group get work (more partitions move keys: see docs/etl.md)"
    )
EOF
        fail "kafka: could not create the topic $KAFKA_TOPIC"
}

kafka_up() {
    if ! up_common kafka; then
        kafka_topic
        return 0
    fi
    need_java
    mkdir -p "$KAFKA_DIR/data" "$LOG_DIR" "$RUN_DIR"
    kafka_lib
    local props=$KAFKA_DIR/server.properties cp="$KAFKA_DIR/lib/*"
    sed -e "s|@HOST@|$KAFKA_HOST|g" -e "s|@PORT@|$KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" -e "s|@DATA_DIR@|$KAFKA_DIR/data|g" \
        "$ROOT/scripts/kafka/server.properties.template" >"$props"
    local jvm=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError
        -Djava.awt.headless=true -Dkafka.logs.dir="$LOG_DIR"
        -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.xml")
    # shellcheck disable=SC2206 # word splitting of the option strings is intended
    jvm+=($KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS)
    # Format only a fresh data directory: formatting again would wipe the topics.
    if [[ ! -f $KAFKA_DIR/data/meta.properties ]]; then
        local cluster_id
        cluster_id=$(java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid 2>>"$(log_file kafka-console)")
        java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$cluster_id" -c "$props" \
            >>"$(log_file kafka-console)" 2>&1 || {
            show_log "$(log_file kafka-console)"
            fail "kafka: formatting $KAFKA_DIR/data failed"
        }
        say "kafka: formatted $KAFKA_DIR/data (cluster id $cluster_id)"
    fi
    # log4j writes kafka.log; the JVM's own output (crashes, bad options) goes to kafka-console.log.
    launch kafka "$(log_file kafka-console)" java "${jvm[@]}" -cp "$cp" kafka.Kafka "$props"
    say "kafka: starting Kafka $KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT"
    wait_ready kafka kafka_ready "$(log_file kafka)" "$(log_file kafka-console)"
    kafka_topic
}

# --- Redis ----------------------------------------------------------------------------------

redis_ready() {
    command -v redis-cli >/dev/null || return 1
    [[ $(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

redis_up() {
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
        fail "redis: redis-server or redis-cli not found (Debian: apt-get install redis-server)"
    up_common redis || return 0
    mkdir -p "$VAR_DIR/redis"
    launch redis "$(log_file redis)" redis-server --bind "$REDIS_HOST" --port "$REDIS_PORT" \
        --dir "$VAR_DIR/redis" --daemonize no --logfile ""
    say "redis: starting on $REDIS_HOST:$REDIS_PORT"
    wait_ready redis redis_ready "$(log_file redis)"
}

# --- reference auth service -----------------------------------------------------------------

auth_ready() {
    "$PYTHON" -c 'import sys, urllib.request
try:
    sys.exit(urllib.request.urlopen(sys.argv[1], timeout=2).status != 200)
except Exception:
    sys.exit(1)' "http://$AUTH_HOST:$AUTH_PORT/health" 2>/dev/null
}

auth_up() {
    up_common auth || return 0
    launch auth "$(log_file auth)" "$PYTHON" -m auth_service --host "$AUTH_HOST" --port "$AUTH_PORT"
    say "auth: starting the reference auth service on $AUTH_HOST:$AUTH_PORT"
    wait_ready auth auth_ready "$(log_file auth)"
}

# --- commands -------------------------------------------------------------------------------

status_of() {
    local name=$1 pid
    if pid=$(running_pid "$name"); then
        if "${name}_ready"; then
            say "$name: running (pid $pid), answers at $(address "$name")"
        else
            say "$name: running (pid $pid), NOT answering at $(address "$name") (log: $(log_file "$name"))"
            return 1
        fi
    elif "${name}_ready"; then
        say "$name: answers at $(address "$name") (not started by this script)"
    else
        say "$name: stopped"
        return 1
    fi
}

# each LABEL ACTION NAME...: runs "ACTION NAME" for each service; one failing does not stop
# the others, but the exit status says so.
each() {
    local label=$1 action=$2 name failed=()
    shift 2
    for name in "$@"; do
        set +e
        (
            set -e
            "$action" "$name"
        )
        local rc=$?
        set -e
        ((rc == 0)) || failed+=("$name")
    done
    if ((${#failed[@]})); then
        printf 'services: %s failed for: %s\n' "$label" "${failed[*]}" >&2
        return 1
    fi
}

up_one() { "${1}_up"; }

main() {
    (($#)) || { usage >&2; exit 2; }
    local command=$1 name
    shift
    for name in "$@"; do
        [[ " ${ALL_SERVICES[*]} " == *" $name "* ]] || fail "unknown service '$name' (kafka, redis, auth)"
    done
    case $command in
        up)
            (($#)) || set -- "${ALL_SERVICES[@]}"
            each up up_one "$@"
            ;;
        down)
            (($#)) || set -- auth redis kafka
            each down stop "$@"
            ;;
        status)
            (($#)) || set -- "${ALL_SERVICES[@]}"
            each status status_of "$@"
            ;;
        -h | --help | help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
