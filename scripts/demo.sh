#!/usr/bin/env bash
# `make demo`: the example vending-fleet application on the embedded cluster, every suite,
# full-strength drills, and the report. A failed gate is a finding, not a failed demo.
set -u
cd "$(dirname "$0")/.."
report=${1:-pgready-report}
.venv/bin/python -m pytest --pgready -p no:cacheprovider -q -rN \
  --pgready-init-sql examples/schema.sql \
  --pgready-init-sql examples/roles.sql \
  --pgready-init-sql examples/seed.sql \
  --pgready-config examples/pgready.toml \
  --pgready-report-dir "$report"
rc=$?
if [ "$rc" -le 1 ]; then
  echo "pgready demo: report written to $report/readiness.html (also readiness.json, readiness.md)"
  exit 0
fi
echo "pgready demo: the run did not complete (pytest exit $rc)" >&2
exit "$rc"
