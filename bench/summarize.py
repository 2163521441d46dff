"""Summarizes one bench/run.sh result directory as Markdown tables.

Usage: python3 bench/summarize.py bench/results/<time>

Reads results.jsonl (parse and idle rows), rules.out (the `compare:` lines of
benches/rules.rs) and e2e.out (the summary of benches/polling.rs). Every
figure is the median over the runs with [min-max]; the targets from issue 10
are judged on the medians.
"""

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

PARSE_TARGET = 20.0  # newswatch parse + normalize vs feedparser, x
RULES_TARGET = 50.0  # newswatch vs one regex per rule at 1,000 rules, x
IDLE_RSS_TARGET_MB = 20.0


def spread(values, fmt="{:.1f}"):
    values = list(values)
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def verdict(met):
    return "**met**" if met else "**not met**"


def parse_section(rows):
    rows = [r for r in rows if r.get("bench") == "parse"]
    if not rows:
        return []
    out = ["### Parse + normalize", ""]
    by_run = defaultdict(dict)  # (tool, variant) -> run -> [rows]
    for r in rows:
        by_run[(r["tool"], r["variant"])].setdefault(r["run"], []).append(r)
    sample = next(iter(by_run.values()))
    first = next(iter(sample.values()))
    items = sum(r["items"] for r in first)
    size = sum(r["bytes"] for r in first)
    out.append(
        f"Corpus: {items:,} items in {size / 1e6:.1f} MB "
        + ", ".join(f"({r['format']}: {r['items']:,} items, {r['bytes'] / 1e6:.1f} MB)" for r in first)
        + f"; {len(sample)} runs, one process per tool per run."
    )
    out.append("")
    out.append(
        "| tool | format | items/CPU-s | MB/CPU-s | items/s (wall) | MB/s (wall) | parse s | normalize s "
        "| process peak RSS MB | process CPU s |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    totals = {}
    for (tool, variant), runs in by_run.items():
        label = f"{tool} ({variant})"
        for fmt in ("rss", "atom"):
            sel = [r for rs in runs.values() for r in rs if r["format"] == fmt]
            out.append(
                f"| {label} | {fmt} | {spread((r['items_per_cpu_s'] for r in sel if 'items_per_cpu_s' in r), '{:,.0f}')} "
                f"| {spread(r['bytes'] / 1e6 / r['cpu_s'] for r in sel if r.get('cpu_s'))} "
                f"| {spread((r['items_per_s'] for r in sel), '{:,.0f}')} "
                f"| {spread(r['mb_per_s'] for r in sel)} "
                f"| {spread((r['parse_s'] for r in sel), '{:.2f}')} "
                f"| {spread((r['normalize_s'] for r in sel), '{:.2f}')} | | |"
            )
        rate_cpu, mb_cpu, rate_wall, mb_wall = [], [], [], []
        for rs in runs.values():
            n = sum(r["items"] for r in rs)
            t = sum(r["total_s"] for r in rs)
            rate_wall.append(n / t)
            mb_wall.append(sum(r["bytes"] for r in rs) / 1e6 / t)
            if all("cpu_s" in r for r in rs):
                rate_cpu.append(n / sum(r["cpu_s"] for r in rs))
                mb_cpu.append(sum(r["bytes"] for r in rs) / 1e6 / sum(r["cpu_s"] for r in rs))
        rss = [rs[0]["peak_rss_mb"] for rs in runs.values()]
        cpu = [rs[0]["process_cpu_s"] for rs in runs.values()]
        totals[(tool, variant)] = (rate_cpu, rate_wall)
        out.append(
            f"| {label} | **both** | **{spread(rate_cpu, '{:,.0f}')}** | **{spread(mb_cpu)}** "
            f"| **{spread(rate_wall, '{:,.0f}')}** | **{spread(mb_wall)}** | | "
            f"| {spread(rss)} | {spread(cpu, '{:.2f}')} |"
        )
    baseline = [k for k in totals if k[0] == "feedparser"]
    if baseline:
        base_cpu, base_wall = totals[baseline[0]]
        out.append("")
        for key, (rates_cpu, rates_wall) in totals.items():
            if key[0] == "feedparser":
                continue
            wall = statistics.median(rates_wall) / statistics.median(base_wall)
            line = f"- {key[0]} ({key[1]}) / feedparser: "
            if rates_cpu and base_cpu:
                ratio = statistics.median(rates_cpu) / statistics.median(base_cpu)
                line += f"**{ratio:.1f}x** items per CPU second, {wall:.1f}x items per wall second "
            else:
                ratio = wall
                line += f"**{wall:.1f}x** items per wall second "
            line += f"(target >= {PARSE_TARGET:.0f}x: {verdict(ratio >= PARSE_TARGET)})"
            out.append(line)
    out.append("")
    return out


COMPARE = re.compile(r"compare: (.*)")


def rules_section(path):
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        m = COMPARE.search(line)
        if not m:
            continue
        fields = dict(re.findall(r"(\w+)=(\S+(?: \[[^\]]*\])?)", m.group(1)))
        rows.append(fields)
    if not rows:
        return []
    out = ["### Rule matching", ""]
    out.append(
        "| rules | newswatch µs/item | newswatch items/s | regex words-only µs/item | "
        "regex all-terms µs/item | × words-only | × all-terms |"
    )
    out.append("|---|---|---|---|---|---|---|")
    for f in rows:
        out.append(
            f"| {f['rules']} | {f['newswatch_us']} | {float(f['newswatch_items_per_s']):,.0f} "
            f"| {f['words_only_us']} | {f['all_terms_us']} | {f['ratio_words_only']} "
            f"| {f['ratio_all_terms']} |"
        )
    last = rows[-1]
    if last["rules"] == "1000":
        for name in ("words_only", "all_terms"):
            ratio = float(last[f"ratio_{name}"])
            out.append(
                f"- 1,000 rules vs regex per rule ({name.replace('_', '-')}): **{ratio:.1f}x** "
                f"(target >= {RULES_TARGET:.0f}x: {verdict(ratio >= RULES_TARGET)})"
            )
    out.append(f"- rounds per count: {rows[0]['rounds']} (interleaved); ranges are min-max over rounds")
    out.append("")
    return out


def e2e_section(path):
    if not path.exists():
        return []
    text = path.read_text()
    out = ["### End to end: `newswatch once`", ""]
    head = re.search(r"polling bench: .*", text)
    if head:
        out.append(head.group(0))
        out.append("")
    runs = re.search(r"median \[min – max\] over (\d+) runs", text)
    out.append("| cycle | wall s | CPU s | peak RSS MB | written MB |")
    out.append("|---|---|---|---|---|")
    for cycle in re.findall(r"^cycle (\d):(.*)$", text, re.M):
        vals = dict(re.findall(r"(\w+) (\S+ \[[^\]]*\])", cycle[1]))
        what = "1 (every feed 200)" if cycle[0] == "1" else "2 (every feed 304)"
        out.append(
            f"| {what} | {vals.get('wall_s', '-')} | {vals.get('cpu_s', '-')} "
            f"| {vals.get('rss_MB', '-')} | {vals.get('written_MB', '-')} |"
        )
    if runs:
        out.append(f"\n{runs.group(1)} runs; medians [min – max].")
    checks = re.findall(r"^CHECK .*$", text, re.M)
    out.extend(f"- {c}" for c in checks)
    out.append("")
    return out


def idle_section(rows):
    rows = [r for r in rows if r.get("bench") == "idle"]
    if not rows:
        return []
    out = ["### Idle daemon", ""]
    r0 = rows[0]
    out.append(
        f"{r0['feeds']} feeds of {r0['items_per_feed']} items ({r0['feed_bytes'] / 1e6:.1f} MB) on "
        f"loopback, interval 12h; measured for {r0['idle_s']} s after the first poll of every feed; "
        f"{len(rows)} runs."
    )
    out.append("")
    out.append("| measure | median [min-max] |")
    out.append("|---|---|")
    for key, label, fmt in [
        ("first_cycle_s", "first cycle, wall s (polls staggered over 5 s)", "{:.1f}"),
        ("first_cycle_cpu_s", "first cycle, CPU s", "{:.2f}"),
        ("rss_start_mb", "RSS after the first cycle, MB", "{:.1f}"),
        ("rss_end_mb", "RSS at the end of the idle window, MB", "{:.1f}"),
        ("anon_end_mb", "of which anonymous memory, MB", "{:.1f}"),
        ("hwm_mb", "peak RSS (VmHWM, first cycle included), MB", "{:.1f}"),
        ("idle_cpu_s", "CPU s used while idle", "{:.2f}"),
        ("threads", "threads", "{:.0f}"),
    ]:
        out.append(f"| {label} | {spread((r[key] for r in rows), fmt)} |")
    problems = [r for r in rows if r["failed"] or r["polled"] < r["feeds"] or not r["exit_ok"]]
    for r in problems:
        out.append(f"- run {r['run']}: polled {r['polled']}, failed {r['failed']}, clean exit {r['exit_ok']}")
    idle_rss = statistics.median(r["rss_end_mb"] for r in rows)
    out.append("")
    out.append(
        f"- idle RSS {idle_rss:.1f} MB (target < {IDLE_RSS_TARGET_MB:.0f} MB: "
        f"{verdict(idle_rss < IDLE_RSS_TARGET_MB)})"
    )
    out.append("")
    return out


def main():
    out_dir = Path(sys.argv[1])
    rows = []
    results = out_dir / "results.jsonl"
    if results.exists():
        rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    lines = []
    machine = out_dir / "machine.txt"
    if machine.exists():
        lines += ["```", machine.read_text().rstrip(), "```", ""]
    lines += parse_section(rows)
    lines += rules_section(out_dir / "rules.out")
    lines += e2e_section(out_dir / "e2e.out")
    lines += idle_section(rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
