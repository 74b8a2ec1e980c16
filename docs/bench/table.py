import json, statistics, sys
rows=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def get(sc, d, f):
    vals=[]
    for r in rows:
        if r.get('scenario')==sc and r.get('dialect')==d and not r.get('broken'):
            v=r
            for k in f.split('.'):
                v=v.get(k) if isinstance(v,dict) else None
            if v is not None: vals.append(v)
    return vals
def med(sc,d,f,fmt="{:.0f}"):
    v=get(sc,d,f)
    if not v: return "n/a"
    return fmt.format(statistics.median(v))
def rng(sc,d,f,fmt="{:.0f}"):
    v=get(sc,d,f)
    if not v: return ""
    return (fmt+"–"+fmt).format(min(v),max(v))
D=["postgres","mysql","sqlite"]
names={"postgres":"PostgreSQL 15","mysql":"MariaDB 10.11","sqlite":"SQLite (WAL)"}
print("runs per cell:", {d: len(get('drain',d,'relay_msgs_per_sec')) for d in D})
print("\n### drain (200,000 messages, 256-byte values, 1,000 keys, one relay)\n")
print("| dialect | relay msg/s | raw_db msg/s | relay/raw_db | raw_broker msg/s | relay/raw_broker | read back: lost / duplicates / order violations |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for d in D:
    print(f"| {names[d]} | {med('drain',d,'relay_msgs_per_sec','{:,.0f}')} ({rng('drain',d,'relay_msgs_per_sec','{:,.0f}')}) | {med('drain',d,'raw_db_msgs_per_sec','{:,.0f}')} | {med('drain',d,'relay_over_raw_db','{:.2f}')} ({rng('drain',d,'relay_over_raw_db','{:.2f}')}) | {med('drain',d,'raw_broker_msgs_per_sec','{:,.0f}')} | {med('drain',d,'relay_over_raw_broker','{:.2f}')} | {sum(get('drain',d,'lost'))} / {sum(get('drain',d,'duplicates'))} / {sum(get('drain',d,'order_violations'))} |")
print("\n### latency (1,000 msg/s for 20 s, 8 writers, commit to consumer)\n")
print("| dialect | wake-up | p50 ms | p90 ms | p99 ms | max ms | p50 / p99 from before Commit | achieved rate | lost |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for d in D:
    w = get('latency',d,'wake')
    print(f"| {names[d]} | {w[0] if w else ''} | {med('latency',d,'p50_ms','{:.1f}')} | {med('latency',d,'p90_ms','{:.1f}')} | {med('latency',d,'p99_ms','{:.1f}')} ({rng('latency',d,'p99_ms','{:.1f}')}) | {med('latency',d,'max_ms','{:.1f}')} | {med('latency',d,'before_commit.p50_ms','{:.1f}')} / {med('latency',d,'before_commit.p99_ms','{:.1f}')} | {med('latency',d,'achieved_rate','{:.0f}')} | {med('latency',d,'lost')} |")
print("\n### enqueue (inside a transaction; median µs per call)\n")
print("| dialect | Enqueue 1 | plain 1 | ratio | Enqueue 100 | plain 100 | ratio | round trips Enqueue / plain |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for d in D:
    p='dsn_as_given.'
    rt = get('enqueue',d,p+'round_trips')
    rts = f"{rt[0]['enqueue_1']}, {rt[0]['enqueue_100']} / {rt[0]['plain_1']}, {rt[0]['plain_100']}" if rt and rt[0] else "in-process"
    print(f"| {names[d]} | {med('enqueue',d,p+'enqueue_1.median_us')} | {med('enqueue',d,p+'plain_1.median_us')} | {med('enqueue',d,p+'ratio_1_median','{:.2f}')} | {med('enqueue',d,p+'enqueue_100.median_us','{:,.0f}')} | {med('enqueue',d,p+'plain_100.median_us','{:,.0f}')} | {med('enqueue',d,p+'ratio_100_median','{:.2f}')} ({rng('enqueue',d,p+'ratio_100_median','{:.2f}')}) | {rts} |")
print("\nwith the driver's one-round-trip option on the plain insert:\n")
print("| dialect | option | Enqueue 100 | plain 100 | ratio | round trips Enqueue / plain |")
print("| --- | --- | --- | --- | --- | --- |")
for d in ["postgres","mysql"]:
    p='one_round_trip_option.'
    o=get('enqueue',d,p+'dsn_option')
    rt = get('enqueue',d,p+'round_trips')
    rts = f"{rt[0]['enqueue_100']} / {rt[0]['plain_100']}" if rt else ""
    print(f"| {names[d]} | `{o[0] if o else ''}` | {med('enqueue',d,p+'enqueue_100.median_us','{:,.0f}')} | {med('enqueue',d,p+'plain_100.median_us','{:,.0f}')} | {med('enqueue',d,p+'ratio_100_median','{:.2f}')} ({rng('enqueue',d,p+'ratio_100_median','{:.2f}')}) | {rts} |")
print("\n### memory (relay process draining 1,000,000 messages) and idle (20 s, empty outbox)\n")
print("| dialect | peak RSS MiB | peak Go heap in use MiB | drain msg/s (child process) | idle CPU, % of one core |")
print("| --- | --- | --- | --- | --- |")
for d in D:
    print(f"| {names[d]} | {med('memory',d,'peak_rss_mib','{:.1f}')} ({rng('memory',d,'peak_rss_mib','{:.1f}')}) | {med('memory',d,'peak_heap_inuse_mib','{:.1f}')} | {med('memory',d,'msgs_per_sec','{:,.0f}')} | {med('idle',d,'cpu_percent_of_one_core','{:.2f}')} ({rng('idle',d,'cpu_percent_of_one_core','{:.2f}')}) |")
print("\nwall seconds (max over runs):", {f"{r['scenario']}/{r['dialect']}": r.get('wall_seconds') for r in sorted(rows, key=lambda r: r.get('wall_seconds',0))})
bad=[ (r.get('scenario'),r.get('dialect'),r.get('round'),r.get('problems')) for r in rows if r.get('exit')!=0 or r.get('broken') or not r.get('ok',False)]
print("failed runs:", bad)
