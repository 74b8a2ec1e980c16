# Prints the tables of "The database under pressure" in docs/benchmarks.md from the
# JSON lines of docs/bench/pressure.sh: medians of the runs, with their range.
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
names = {"postgres": "PostgreSQL 15", "mysql": "MariaDB 10.11"}

def pick(sc, d, **want):
    return [r for r in rows if r.get("scenario") == sc and r.get("dialect") == d
            and all(r.get(k) == v for k, v in want.items())]

def med(vals, fmt="{:,.0f}"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "n/a"
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt.format(m)
    return (fmt + " (" + fmt + "–" + fmt + ")").format(m, min(vals), max(vals))

print("### drain with and without a held snapshot (200,000 messages, one relay)\n")
print("| dialect | snapshot | relay msg/s | raw_db msg/s | raw_slim msg/s | relay/raw_db | relay/raw_slim | read back: lost / duplicates / order | runs failed |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for d in names:
    for hold in (False, True):
        rs = pick("drain", d, hold=hold)
        print(f"| {names[d]} | {'held' if hold else 'none'} | {med([r.get('relay_msgs_per_sec') for r in rs])} | "
              f"{med([r.get('raw_db_msgs_per_sec') for r in rs])} | {med([r.get('raw_slim_msgs_per_sec') for r in rs])} | "
              f"{med([r.get('relay_over_raw_db') for r in rs], '{:.2f}')} | {med([r.get('relay_over_raw_slim') for r in rs], '{:.2f}')} | "
              f"{sum(r.get('lost', 0) for r in rs)} / {sum(r.get('duplicates', 0) for r in rs)} / {sum(r.get('order_violations', 0) for r in rs)} | "
              f"{sum(1 for r in rs if not r.get('ok'))} of {len(rs)} |")
    fresh = [r.get("relay_msgs_per_sec") for r in pick("drain", d, hold=False)]
    held = [r.get("relay_msgs_per_sec") for r in pick("drain", d, hold=True)]
    if fresh and held:
        print(f"| {names[d]} | held / none | {statistics.median(held) / statistics.median(fresh):.2f} | | | | | | |")

print("\n### commit (business transactions a second, a relay running)\n")
print("| dialect | writers | none tps | plain tps | enqueue tps | enqueue/plain | enqueue/none | p50 / p99 ms (enqueue) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for d in names:
    rs = pick("commit", d)
    ws = sorted({p["writers"] for r in rs for p in r.get("points", [])})
    for w in ws:
        ps = [p for r in rs for p in r.get("points", []) if p["writers"] == w]
        print(f"| {names[d]} | {w} | {med([p['none']['tps'] for p in ps])} | {med([p['plain']['tps'] for p in ps])} | "
              f"{med([p['enqueue']['tps'] for p in ps])} | {med([p['enqueue_over_plain'] for p in ps], '{:.2f}')} | "
              f"{med([p['enqueue_over_none'] for p in ps], '{:.2f}')} | "
              f"{med([p['enqueue']['p50_ms'] for p in ps], '{:.1f}')} / {med([p['enqueue']['p99_ms'] for p in ps], '{:.1f}')} |")
print("\n| dialect | wake-up | poll interval | first wake-up after 60 s idle, ms | p50 ms | p99 ms | runs failed |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for d in names:
    rs = pick("commit", d)
    if rs:
        poll = "30 s" if rs[0].get("wake") == "pqnotify" else "250 ms (polls)"
        print(f"| {names[d]} | {rs[0].get('wake')} | {poll} | "
              f"{med([r.get('wake_first_ms') for r in rs], '{:.1f}')} | {med([r.get('wake_p50_ms') for r in rs], '{:.1f}')} | "
              f"{med([r.get('wake_p99_ms') for r in rs], '{:.1f}')} | {sum(1 for r in rs if not r.get('ok'))} of {len(rs)} |")

print("\n### latency at 1,000 msg/s, fresh and after a churn under a held snapshot\n")
print("| dialect | table | p50 ms | p99 ms | max ms | achieved rate | lost | dead tuples / history list before | runs failed |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for d in names:
    p99 = {}
    for hold in (False, True):
        rs = pick("pressure", d, hold=hold, measure="latency")
        lat = [r.get("latency") or {} for r in rs]
        p99[hold] = [l.get("p99_ms") for l in lat if l.get("p99_ms") is not None]
        before = [r.get("dead_tuples") if r.get("dead_tuples") is not None else r.get("history_list_length") for r in rs]
        churn = max([r.get("churn", 0) for r in rs] or [0])
        print(f"| {names[d]} | {f'held, {churn:,} churned' if hold else 'fresh'} | {med([l.get('p50_ms') for l in lat], '{:.1f}')} | "
              f"{med([l.get('p99_ms') for l in lat], '{:.1f}')} | {med([l.get('max_ms') for l in lat], '{:.1f}')} | "
              f"{med([l.get('achieved_rate') for l in lat])} | {sum(l.get('lost', 0) or 0 for l in lat)} | {med(before)} | "
              f"{sum(1 for r in rs if not r.get('ok'))} of {len(rs)} |")
    if p99[False] and p99[True]:
        print(f"| {names[d]} | held / fresh p99 | | {statistics.median(p99[True]) / statistics.median(p99[False]):.2f} | | | | | |")

print("\n### latency over time, held (p99 ms per 10 s window, first run)\n")
for d in names:
    rs = pick("pressure", d, hold=True, measure="latency")
    if rs:
        ws = rs[0].get("latency_windows") or []
        print(f"- {names[d]}: " + ", ".join(f"{w.get('p99_ms', 0):.1f}" for w in ws))
