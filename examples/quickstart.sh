#!/usr/bin/env bash
# The jammi quickstart: two tenants and global base models in one SQLite catalog.
#
#   bash examples/quickstart.sh
#
# Runs `jammi` (built with cargo unless $JAMMI names a binary) on a fresh catalog file,
# each run with the scope a host application would give it, and prints each tenant's
# leaderboard; then acme moves a `champion` alias and asks the event log which version was
# champion before the move. Run it from the repository root.
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
echo "== 5. acme makes version 1 its champion"
jammi --tenant "$acme" -f examples/quickstart/5_champion.sql
# An instant between the two promotions, for the time-travel query of step 7.
sleep 0.05
before_move=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
sleep 0.05
echo "== 6. acme moves the champion alias to version 2"
jammi --tenant "$acme" -f examples/quickstart/6_promote.sql
echo "== 7. which version was champion at $before_move, which is now, and the history"
jammi --tenant "$acme" -c "
SELECT 'then' AS at, version FROM model_aliases_as_of(TIMESTAMP '$before_move')
WHERE model_id = 'acme/support-embed' AND alias = 'champion'
UNION ALL
SELECT 'now', version FROM jammi.public.model_aliases
WHERE model_id = 'acme/support-embed' AND alias = 'champion'
ORDER BY at DESC" -c "
SELECT event_id, kind, row_key FROM jammi.public.events
WHERE model_id = 'acme/support-embed' ORDER BY event_id"
