#!/usr/bin/env bash
# The test command: installs the test peers when missing (scripts/install-test-deps.sh), then
# runs every test of the workspace, the end-to-end ones against the real Prometheus, promtool,
# Pushgateway and Python client included. Extra arguments go to `cargo test`
# (e.g. `bash scripts/test.sh --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --workspace "$@"
