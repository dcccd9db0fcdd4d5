#!/usr/bin/env bash
# Install the Debian packages clickstream needs that are missing: system-deps.sh [run|test|bench].
#   run:   Redis, a JDK 17+ and Maven (Kafka is fetched from Maven Central by services.sh)
#   test:  run + Chromium and its driver (the browser test of the tracker)
#   bench: run + wrk
# Does nothing when everything is there; as a user without root or sudo, says what is missing.
set -euo pipefail

need="${1:-run}"
packages=()
java_major() {
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1
}
command -v redis-server >/dev/null || packages+=(redis-server)
# Kafka 4 needs Java 17 or newer.
if ! command -v java >/dev/null || (($(java_major || echo 0) < 17)); then
    packages+=(openjdk-17-jdk-headless)
fi
command -v mvn >/dev/null || packages+=(maven)
command -v curl >/dev/null || packages+=(curl)
case "$need" in
    run) ;;
    test)
        command -v chromium >/dev/null || packages+=(chromium)
        command -v chromedriver >/dev/null || packages+=(chromium-driver)
        ;;
    bench) command -v wrk >/dev/null || packages+=(wrk) ;;
    *) echo "usage: $0 [run|test|bench]" >&2; exit 2 ;;
esac

((${#packages[@]})) || exit 0
if ((EUID == 0)); then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo)
else
    echo "missing Debian packages: ${packages[*]}" >&2
    echo "install them with: sudo apt-get install ${packages[*]}" >&2
    exit 1
fi
echo "installing Debian packages: ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}" </dev/null
