#!/usr/bin/env bash
# newswatch against the tools people would use instead, on one machine, in one
# run. See BENCHMARKS.md, "Against the alternatives", for what each part
# measures and how to read the numbers.
#
#   bench/run.sh                      # everything, 5 runs each (16 minutes on 2 busy cores)
#   bench/run.sh --runs 3             # fewer repetitions
#   bench/run.sh --only parse,rules   # a subset: parse, rules, e2e, idle
#
# Environment knobs: BENCH_RUNS (5), BENCH_ONLY (all), BENCH_IDLE_RUNS (3),
# BENCH_IDLE_SECONDS (60), BENCH_IDLE_FEEDS (100), BENCH_E2E_FEEDS (1000),
# BENCH_RULE_COUNTS (10,100,1000), BENCH_CORPUS_FILES (20 files per format)
# and BENCH_CORPUS_ITEMS (100 items per file).
#
# What it does: builds the release binary and the bench programs, writes a
# deterministic corpus of RSS 2.0 and Atom files (bench/corpus), creates
# bench/.venv with a pinned feedparser from PyPI, runs each benchmark, keeps
# every raw number in bench/results/<time>/ and prints a summary (median and
# min-max over the runs, ratios, and each target met or not).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

FEEDPARSER_VERSION=6.0.14
RUNS=${BENCH_RUNS:-5}
ONLY=${BENCH_ONLY:-parse,rules,e2e,idle}
IDLE_RUNS=${BENCH_IDLE_RUNS:-3}
IDLE_SECONDS=${BENCH_IDLE_SECONDS:-60}
IDLE_FEEDS=${BENCH_IDLE_FEEDS:-100}
E2E_FEEDS=${BENCH_E2E_FEEDS:-1000}
RULE_COUNTS=${BENCH_RULE_COUNTS:-10,100,1000}
CORPUS_FILES=${BENCH_CORPUS_FILES:-20}
CORPUS_ITEMS=${BENCH_CORPUS_ITEMS:-100}

while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
wants() { [[ ",$ONLY," == *",$1,"* ]]; }

say() { printf '\n== %s\n' "$*"; }

# --- tools -----------------------------------------------------------------
command -v cargo >/dev/null || { echo "cargo is needed (https://rustup.rs)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }
if [ ! -x /usr/bin/time ]; then
  # GNU time gives exact per-process peak RSS and CPU (wait4 rusage).
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "GNU time (/usr/bin/time) is missing: installing the Debian package 'time'"
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
  else
    echo "GNU time (/usr/bin/time) is needed: apt-get install time (as root)" >&2
    exit 1
  fi
fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/results/$STAMP
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"

# --- machine ---------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -sr)"
  echo "rustc: $(rustc --version)"
  echo "python: $(python3 --version 2>&1)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

# --- build -----------------------------------------------------------------
say "building (release)"
cargo build --release --locked --bin newswatch --example bench_compare
NEWSWATCH=$ROOT/target/release/newswatch
COMPARE=$ROOT/target/release/examples/bench_compare

# Runs a command under GNU time; appends its JSON lines to results.jsonl with
# the process's wall, CPU and peak RSS and the run number added.
measure() {
  local run=$1; shift
  local timing=$OUT/time.txt
  /usr/bin/time -o "$timing" -f '%e %U %S %M' "$@" > "$OUT/last.jsonl"
  python3 - "$run" "$timing" "$OUT/last.jsonl" >> "$RESULTS" <<'PY'
import json, sys
run, timing, lines = sys.argv[1], sys.argv[2], sys.argv[3]
wall, user, system, rss_kb = open(timing).read().split()[-4:]
for line in open(lines):
    row = json.loads(line)
    row.update(bench="parse", run=int(run), process_wall_s=float(wall),
               process_cpu_s=float(user) + float(system), peak_rss_mb=int(rss_kb) / 1024)
    print(json.dumps(row))
PY
}

# --- parse + normalize -----------------------------------------------------
if wants parse; then
  say "corpus: $CORPUS_FILES RSS 2.0 + $CORPUS_FILES Atom files of $CORPUS_ITEMS items (bench/corpus)"
  rm -rf bench/corpus
  "$COMPARE" corpus bench/corpus "$CORPUS_FILES" "$CORPUS_ITEMS" | tee "$OUT/corpus.txt"
  (cd bench/corpus && find . -name '*.xml' | sort | xargs sha256sum | sha256sum | cut -c1-16) \
    | sed 's/^/corpus digest: /' | tee -a "$OUT/corpus.txt"

  say "python virtualenv (bench/.venv, feedparser $FEEDPARSER_VERSION)"
  if ! bench/.venv/bin/python -c "import feedparser, sys; sys.exit(feedparser.__version__ != '$FEEDPARSER_VERSION')" 2>/dev/null; then
    rm -rf bench/.venv
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install --quiet --disable-pip-version-check "feedparser==$FEEDPARSER_VERSION"
  fi
  bench/.venv/bin/pip freeze --disable-pip-version-check | tee "$OUT/venv.txt"

  say "parse + normalize: $RUNS runs, one process per tool per run"
  for run in $(seq 1 "$RUNS"); do
    measure "$run" "$COMPARE" parse bench/corpus
    measure "$run" "$COMPARE" parse --entities bench/corpus
    measure "$run" bench/.venv/bin/python bench/parse_feedparser.py bench/corpus
    echo "run $run done (load $(cut -d' ' -f1 /proc/loadavg))"
  done
fi

# --- rule matching -----------------------------------------------------------
if wants rules; then
  say "rule matching at $RULE_COUNTS rules: newswatch vs one regex per rule ($RUNS interleaved rounds)"
  RULES_BENCH_COMPARE=$RULE_COUNTS RULES_BENCH_ROUNDS=$RUNS \
    cargo bench --locked --bench rules 2> "$OUT/rules.log" | tee "$OUT/rules.out"
fi

# --- end to end: `newswatch once` over many feeds ---------------------------
if wants e2e; then
  say "end to end: newswatch once over $E2E_FEEDS feeds on loopback (benches/polling.rs, $RUNS runs)"
  NEWSWATCH_BENCH_FEEDS=$E2E_FEEDS NEWSWATCH_BENCH_RUNS=$RUNS \
    cargo bench --locked --bench polling 2> "$OUT/e2e.log" | tee "$OUT/e2e.out"
fi

# --- idle daemon -----------------------------------------------------------
if wants idle; then
  say "idle daemon: $IDLE_FEEDS feeds, ${IDLE_SECONDS}s after the first cycle ($IDLE_RUNS runs)"
  for run in $(seq 1 "$IDLE_RUNS"); do
    "$COMPARE" idle --bin "$NEWSWATCH" --feeds "$IDLE_FEEDS" --seconds "$IDLE_SECONDS" \
      | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); r.update(bench='idle', run=$run); print(json.dumps(r))" \
      | tee -a "$RESULTS"
  done
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
say "summary (raw numbers in ${OUT#"$ROOT"/})"
python3 bench/summarize.py "$OUT" | tee "$OUT/summary.md"
