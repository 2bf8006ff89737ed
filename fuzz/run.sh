#!/usr/bin/env bash
# Run each fuzz target for a bounded time; exit non-zero on a crash.
#   fuzz/run.sh [SECONDS]     (default 60 per target)
# Needs the nightly toolchain (libFuzzer instrumentation); installs cargo-fuzz if missing.
# Crashes are written to fuzz/artifacts/TARGET/; the corpus grows in fuzz/corpus/TARGET/.
set -euo pipefail

seconds="${1:-60}"
cd "$(dirname "$0")"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

status=0
for target in token_request authorize_request; do
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds}s"
    if ! cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1; then
        echo "== $target: FAILED (see fuzz/artifacts/$target/)" >&2
        status=1
    fi
done
exit "$status"
