#!/usr/bin/env bash
# The jammi quickstart: two tenants and global base models in one SQLite catalog.
#
#   bash examples/quickstart.sh
#
# Runs `jammi` (built with cargo unless $JAMMI names a binary) four times on a fresh
# catalog file, each run with the scope a host application would give it, and prints
# each tenant's leaderboard. Run it from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${JAMMI:-}" ]; then
    jammi() { "$JAMMI" "$@"; }
else
    # Release, like the test suite and the benches; building the example with it takes
    # the dev-dependencies' features in too, so all three share one build of DataFusion.
    cargo build --release --quiet --bin jammi --example join_with_data
    jammi() { "${CARGO_TARGET_DIR:-target}/release/jammi" "$@"; }
fi

db_dir="${QUICKSTART_DIR:-target/quickstart}"
mkdir -p "$db_dir"
rm -f "$db_dir"/jammi.db*
export JAMMI_DB="sqlite://$db_dir/jammi.db"
acme=6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10
globex=0b7e6d5c-4a39-4f28-8e17-d6c5b4a39281

echo "== 1. global base models (unscoped)"
jammi -f examples/quickstart/1_base_models.sql
echo "== 2. tenant acme registers fine-tunes and eval scores"
jammi --tenant "$acme" -f examples/quickstart/2_acme.sql
echo "== 3. tenant globex does the same"
jammi --tenant "$globex" -f examples/quickstart/3_globex.sql
echo "== 4a. acme's leaderboard: acme's models and the global ones, never globex's"
jammi --tenant "$acme" -f examples/quickstart/4_leaderboard.sql
echo "== 4b. globex's leaderboard"
jammi --tenant "$globex" -f examples/quickstart/4_leaderboard.sql
