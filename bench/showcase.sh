#!/usr/bin/env bash
# The benchmark showcase (issue 5): ONE command that builds the release binaries, runs the
# matrix against 127.0.0.1 -- ringgate and the official Pushgateway (default flags and
# --push.disable-consistency-check), each scenario on a fresh gateway process -- writes raw
# JSON per scenario into bench-results/showcase/<date>/ and regenerates bench-results/README.md.
#
# Usage, from anywhere in the repository:
#
#   bash bench/showcase.sh                 # the full matrix, 30 min soak (about 1 h)
#   bash bench/showcase.sh --quick         # smoke version: small scales, 10 s cycles (~10 min)
#   bash bench/showcase.sh --soak 45m      # soak length
#   bash bench/showcase.sh --only ringgate,spike   # a subset (groups: ringgate spike soak
#                                          # breaking official official-nocheck small)
#   bash bench/showcase.sh --worktree      # build the working tree instead of the committed HEAD
#   bash bench/showcase.sh --help          # every option (bench/showcase.py)
#
# Builds with CARGO_TARGET_DIR=/work/target-bench (ringgate) and /work/target-loadgen
# (ringgate-loadgen) unless RINGGATE_TARGET_DIR / LOADGEN_TARGET_DIR say otherwise.
# Every scenario is bounded in time (the load generator stops by itself; the driver kills a
# gateway that does not stop within 30 s of SIGTERM and a load generator that overruns its
# budget). Requires: cargo, python3 (stdlib only), /usr/bin/prometheus-pushgateway
# (Debian's prometheus-pushgateway, installed here with apt-get when missing) for the official
# runs, ../shared/data/ next to the repo.
set -euo pipefail
cd "$(dirname "$0")/.."

export RINGGATE_TARGET_DIR="${RINGGATE_TARGET_DIR:-/work/target-bench}"
export LOADGEN_TARGET_DIR="${LOADGEN_TARGET_DIR:-/work/target-loadgen}"

# By default the binaries are built from the committed HEAD, exported with `git archive` to
# $RINGGATE_TARGET_DIR/showcase-src, so that uncommitted edits in the working tree (others may
# be editing src/) are not what gets measured; --worktree builds the working tree instead.
build=1
src=head
for a in "$@"; do
    case "$a" in
        --no-build|--help|-h) build=0 ;;
        --worktree) src=worktree ;;
    esac
done
if [ "$build" = 1 ]; then
    if [ "$src" = head ]; then
        dir="$RINGGATE_TARGET_DIR/showcase-src"
        rm -rf "$dir" && mkdir -p "$dir"
        git archive HEAD | tar -x -C "$dir"
        # tar gives the files the commit's time; a build made since would look up to date.
        find "$dir" -type f -exec touch {} +
        export SHOWCASE_BUILD_SRC="git archive of $(git rev-parse HEAD)"
    else
        dir=.
        export SHOWCASE_BUILD_SRC="working tree at $(git rev-parse HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock loadgen || echo ' with uncommitted changes')"
    fi
    echo "showcase: building ringgate (release) in $RINGGATE_TARGET_DIR from $SHOWCASE_BUILD_SRC" >&2
    (cd "$dir" && CARGO_TARGET_DIR="$RINGGATE_TARGET_DIR" cargo build --release --bin ringgate)
    # For bench/profile_*.sh, which profile this same binary.
    echo "$SHOWCASE_BUILD_SRC" > "$RINGGATE_TARGET_DIR/release/ringgate.built-from"
    echo "showcase: building ringgate-loadgen (release) in $LOADGEN_TARGET_DIR" >&2
    (cd "$dir" && CARGO_TARGET_DIR="$LOADGEN_TARGET_DIR" cargo build --release -p ringgate-loadgen)
fi

# The official gateway runs beside ringgate in the same matrix: install Debian's package when it
# is missing (as scripts/install-test-deps.sh does for the tests) rather than run half a showcase.
if [ "$build" = 1 ] && [ ! -x /usr/bin/prometheus-pushgateway ]; then
    echo "showcase: apt-get install prometheus-pushgateway" >&2
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends prometheus-pushgateway >/dev/null
fi

python3 bench/showcase.py "$@"
