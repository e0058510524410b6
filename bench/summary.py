#!/usr/bin/env python3
"""Summarize bench/results/*.jsonl as the Markdown tables docs/benchmarks.md keeps:
each Praetor figure next to its peer's from the same run, the ratio, and the target."""
import json
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def ok(cond):
    return "met" if cond else "**not met**"


def pick(kv, system, op, clients, via):
    """The KV run of `system` for this op and client count, through `via` (leader, follower,
    or all servers: runs before this field existed count as all)."""
    return next((r for r in kv if r["system"] == system and r["op"] == op and r["concurrency"] == clients
                 and r.get("via", "all") == via), None)


def main(path):
    rows = load(path)
    out = []
    kv = [r for r in rows if r["bench"] == "kv"]
    if kv:
        out.append("### KV: 3 Praetor servers vs 3 etcd members (256 B values)\n")
        out.append("| op | clients | through | Praetor ops/s | etcd ops/s | ratio | target | Praetor p99 ms | etcd p99 ms |")
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for op, target in (("write", 1.5), ("read", 1.0)):
            for c in sorted({r["concurrency"] for r in kv}):
                for via in ("leader", "follower", "all"):
                    p = pick(kv, "praetor", op, c, via)
                    e = pick(kv, "etcd", op, c, via)
                    if not p or not e:
                        continue
                    ratio = p["ops_per_sec"] / e["ops_per_sec"] if e["ops_per_sec"] else float("nan")
                    through = "all 3 servers" if via == "all" else f"the {via}"
                    out.append(
                        f"| {op} | {c} | {through} | {p['ops_per_sec']:.0f} | {e['ops_per_sec']:.0f} | {ratio:.2f}x | "
                        f">= {target}x: {ok(ratio >= target)}; p99 {ok(p['p99_ms'] <= e['p99_ms'])} | "
                        f"{p['p99_ms']:.2f} | {e['p99_ms']:.2f} |"
                    )
        out.append("")
    dns = [r for r in rows if r["bench"] == "dns"]
    if dns:
        out.append("### DNS: Praetor vs NSD (static zone with the same records), dnsperf\n")
        out.append("| query | Praetor qps | NSD qps | ratio | target >= 0.7x | Praetor lost | NSD lost |")
        out.append("| --- | --- | --- | --- | --- | --- | --- |")
        for q in dict.fromkeys(r["query"] for r in dns):
            p = next(r for r in dns if r["query"] == q and r["server"] == "praetor")
            n = next(r for r in dns if r["query"] == q and r["server"] == "nsd")
            ratio = p["qps"] / n["qps"] if n["qps"] else float("nan")
            out.append(
                f"| {q} | {p['qps']:.0f} | {n['qps']:.0f} | {ratio:.2f}x | {ok(ratio >= 0.7 and p['lost'] == 0)} | {p['lost']} | {n['lost']} |"
            )
        out.append("")
    http = [r for r in rows if r["bench"] == "http"]
    if http:
        p = next(r for r in http if r["server"] == "praetor")
        n = next(r for r in http if r["server"] == "nginx")
        ratio = p["rps"] / n["rps"] if n["rps"] else float("nan")
        out.append("### HTTP: `/v1/health/service/web100?passing` vs nginx serving the same JSON (wrk -t2 -c64)\n")
        out.append("| Praetor req/s | nginx req/s | ratio | target >= 0.5x | Praetor p99 | nginx p99 |")
        out.append("| --- | --- | --- | --- | --- | --- |")
        out.append(f"| {p['rps']:.0f} | {n['rps']:.0f} | {ratio:.2f}x | {ok(ratio >= 0.5)} | {p['p99']} | {n['p99']} |")
        out.append("")
    watches = [r for r in rows if r["bench"] == "watch"]
    if watches:
        out.append("### Blocking queries (one key)\n")
        out.append("| HTTP | watchers | connected | bytes/watcher (target < 4096) | woken by an unrelated write (target 0) | all woken after the change (target < 1000 ms) | errors |")
        out.append("| --- | --- | --- | --- | --- | --- | --- |")
    for r in watches:
        out.append(
            f"| {r.get('http', 'h1')} | {r['watchers']} | {r['connected']} | {r['bytes_per_watcher']:.0f} ({ok(r['bytes_per_watcher'] < 4096)}) | "
            f"{r['woken_by_unrelated_write']} ({ok(r['woken_by_unrelated_write'] == 0)}) | {r['all_woken_ms']:.0f} ms "
            f"({ok(r['all_woken_ms'] < 1000 and r['woken'] == r['watchers'])}) | {r['errors']} |"
        )
    if watches:
        out.append("")
    cat = next((r for r in rows if r["bench"] == "catalog"), None)
    gets = [r for r in rows if r["bench"] == "get"]
    snap = next((r for r in rows if r["bench"] == "snapshot"), None)
    if cat:
        out.append("### Scale: 10,000 nodes, 100,000 service instances\n")
        out.append(f"- registration through `/v1/txn` (one node and its 10 instances per transaction, 32 clients): "
                   f"{cat['secs']:.1f} s, {cat['nodes_per_sec']:.0f} nodes/s, {cat['errors']} errors")
        for g in gets:
            out.append(f"- `{g['path']}` (8 clients): {g['ops_per_sec']:.0f} req/s, p50 {g['p50_ms']:.2f} ms, "
                       f"p99 {g['p99_ms']:.2f} ms (target < 5 ms: {ok(g['p99_ms'] < 5)})")
        if snap:
            out.append(f"- snapshot save {snap['save_ms']} ms ({snap['snapshot_bytes'] / 1e6:.1f} MB), restore onto a fresh "
                       f"server {snap['restore_ms']} ms ({snap['svc7_instances_after_restore']} instances of svc-7 after); "
                       f"data directory {snap['data_dir_kib'] / 1024:.0f} MiB")
        out.append("")
    fp = next((r for r in rows if r["bench"] == "ready"), None)
    if fp:
        out.append("### Footprint\n")
        out.append(f"- `agent -dev` start to a known leader: median {fp['ready_ms_median']:.0f} ms "
                   f"(target < 100 ms: {ok(fp['ready_ms_median'] < 100)}); all: {fp['ready_ms_all']}")
        out.append(f"- idle `agent -dev` RSS after 5 s: {fp['idle_rss_kib_median'] / 1024:.1f} MiB "
                   f"(target < 20 MiB: {ok(fp['idle_rss_kib_median'] < 20 * 1024)})")
        if "link_order_total" in fp:
            out.append(f"- functions of `agent/link-order.txt` present in the binary: "
                       f"{fp['link_order_found']} of {fp['link_order_total']}")
        out.append("")
    fo = next((r for r in rows if r["bench"] == "failover"), None)
    if fo:
        out.append("### Failover\n")
        out.append(f"- leader killed, writes accepted again: median {fo['median_ms']} ms over 5 rounds "
                   f"(target < 1000 ms: {ok(0 < fo['median_ms'] < 1000)})")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest.jsonl")
