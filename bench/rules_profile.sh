#!/usr/bin/env bash
# Load-independent cost of rule matching per item, from callgrind with cache
# and branch simulation: instructions, L1 misses, mispredicted branches and
# an estimate of cycles (Ir + 10 per L1 miss + 100 per last-level miss + 15
# per mispredicted branch), for each rule count given (default: 1 and 1000).
# Only `RuleSet::fired` is measured (RULES_BENCH_PROFILE in benches/rules.rs).
#
#   bench/rules_profile.sh            # 1 and 1,000 rules
#   bench/rules_profile.sh 1 100 1000
#
# Takes about 1.5 minutes per rule count. RULES_BENCH_TAIL (see
# benches/rules.rs) changes the corpus vocabulary.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 1000)

bin=$(cargo bench --bench rules --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "rules" and m.get("executable"):
        print(m["executable"])')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for n in "${counts[@]}"; do
  RULES_BENCH_PROFILE=$n RULES_BENCH_PASSES=1 valgrind --tool=callgrind --cache-sim=yes ${RULES_PROFILE_CACHE:-} \
    --branch-sim=yes --callgrind-out-file="$out/cg.$n" --collect-atstart=no \
    --toggle-collect='*RuleSet::fired_with' "$bin" --bench >/dev/null 2>&1
  python3 - "$n" "$out/cg.$n" <<'PY'
import sys
n, path = sys.argv[1], sys.argv[2]
events, totals = [], []
for line in open(path):
    if line.startswith("events:"):
        events = line.split()[1:]
    elif line.startswith(("summary:", "totals:")):
        totals = [int(x) for x in line.split()[1:]]
d = dict(zip(events, totals))
items = 10_000
l1 = d.get("I1mr", 0) + d.get("D1mr", 0) + d.get("D1mw", 0)
ll = d.get("ILmr", 0) + d.get("DLmr", 0) + d.get("DLmw", 0)
bm = d.get("Bcm", 0) + d.get("Bim", 0)
cycles = d["Ir"] + 10 * l1 + 100 * ll + 15 * bm
print(f"rules={n}: instructions/item={d['Ir'] / items:.0f} L1-misses/item={l1 / items:.0f} "
      f"mispredicts/item={bm / items:.0f} est-cycles/item={cycles / items:.0f}")
PY
done
