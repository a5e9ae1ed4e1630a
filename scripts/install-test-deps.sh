#!/usr/bin/env bash
# Installs what the tests and the packaging checks need, when it is missing:
#   Debian: prometheus (server + promtool), prometheus-pushgateway, mandoc, groff-base,
#           rpm (rpmbuild), systemd (systemd-analyze), python3 + pip;
#   PyPI:   prometheus-client and protobuf, for the python3 that is first on PATH (the
#           interpreter the tests run).
# Idempotent: on a machine that has everything it installs nothing and touches no network.
# Needs root (or sudo) only when something is missing.
set -euo pipefail

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo_cmd=(sudo)
    fi
fi

# program -> Debian package that provides it
declare -A apt_for=(
    [/usr/bin/prometheus]=prometheus
    [/usr/bin/promtool]=prometheus
    [/usr/bin/prometheus-pushgateway]=prometheus-pushgateway
    [/usr/bin/mandoc]=mandoc
    [/usr/bin/groff]=groff-base
    [/usr/bin/rpmbuild]=rpm
    [/usr/bin/systemd-analyze]=systemd
    [/usr/bin/dpkg-deb]=dpkg
)
missing=()
for prog in "${!apt_for[@]}"; do
    [ -x "$prog" ] || missing+=("${apt_for[$prog]}")
done
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)

if [ "${#missing[@]}" -gt 0 ]; then
    # De-duplicate, keep it readable in the log.
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "install-test-deps: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import prometheus_client, google.protobuf' >/dev/null 2>&1; then
    echo "install-test-deps: pip install prometheus-client protobuf (for $(command -v python3))"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    fi
    # Debian's own python3 refuses system-wide pip installs (PEP 668) unless told.
    python3 -m pip install --quiet --disable-pip-version-check prometheus-client protobuf ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages prometheus-client protobuf
fi

# Fail here, with the name of what is still missing, rather than in the middle of the tests.
for prog in "${!apt_for[@]}"; do
    [ -x "$prog" ] || { echo "install-test-deps: $prog is still missing" >&2; exit 1; }
done
python3 -c 'import prometheus_client, google.protobuf' ||
    { echo "install-test-deps: python3 cannot import prometheus_client and google.protobuf" >&2; exit 1; }
echo "install-test-deps: all test peers present"
