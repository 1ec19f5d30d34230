#!/usr/bin/env python3
"""Checks a trace file written by TASKLOCAL_TRACE and prints what the trace
tests (tests/check_trace.c) compare with the program's own counts.

    verify.py TRACE.json

Exits 1, with the reason on stderr, when the file is not JSON, lacks what
Chrome's trace-event format needs, or has two slices of one thread that
overlap. Otherwise prints, one per line:

    pid P
    dropped N                     (from otherData)
    ring R                        (events per thread)
    recycled N                    (events lost with the rings of exited threads reused)
    thread TID events E dropped D slices S
    task ID root=0|1 slices S threads T1,T2 name NAME
    order ID ID ...               (the tasks of the slices, in time order, per thread: one line per thread)
    instant NAME COUNT
"""
import collections
import decimal
import json
import sys


def fail(msg):
    print("verify.py: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        fail("usage: verify.py TRACE.json")
    try:
        with open(sys.argv[1], encoding="utf-8") as f:
            doc = json.load(f, parse_float=decimal.Decimal)
    except (OSError, ValueError) as e:
        fail("%s: %s" % (sys.argv[1], e))
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        fail("no traceEvents array")
    other = doc.get("otherData", {})
    events = doc["traceEvents"]
    pids = set()
    threads = {}
    slices = collections.defaultdict(list)      # tid -> [(ts, end, task)]
    tasks = {}
    instants = collections.Counter()
    flows = collections.Counter()
    for e in events:
        for key in ("ph", "pid", "name"):
            if key not in e:
                fail("an event without %r: %r" % (key, e))
        pids.add(e["pid"])
        ph = e["ph"]
        if ph == "M":
            if e["name"] == "tasklocal_thread":
                threads[e["tid"]] = e["args"]
            continue
        if "tid" not in e or "ts" not in e:
            fail("an event without tid or ts: %r" % e)
        if ph == "X":
            args = e["args"]
            if e["dur"] < 0:
                fail("a negative duration: %r" % e)
            slices[e["tid"]].append((e["ts"], e["ts"] + e["dur"], args["task"]))
            t = tasks.setdefault(args["task"], {"root": bool(args.get("root")), "slices": 0,
                                                 "threads": set(), "name": e["name"]})
            t["slices"] += 1
            t["threads"].add(e["tid"])
        elif ph == "i":
            instants[e["name"]] += 1
        elif ph in ("s", "f"):
            flows[ph] += 1
        else:
            fail("an unexpected phase: %r" % e)
    if len(pids) != 1:
        fail("events of %d processes" % len(pids))
    print("pid %d" % pids.pop())
    print("dropped %s" % other.get("dropped", "?"))
    print("ring %s" % other.get("ring_events", "?"))
    print("recycled %s" % other.get("recycled", "?"))
    for tid in sorted(set(threads) | set(slices)):
        s = sorted(slices[tid])
        for a, b in zip(s, s[1:]):
            if b[0] < a[1]:
                fail("thread %s: a slice of task %s at %s overlaps the one of task %s until %s"
                     % (tid, b[2], b[0], a[2], a[1]))
        info = threads.get(tid, {})
        print("thread %s events %s dropped %s slices %d" % (tid, info.get("events", "?"),
                                                            info.get("dropped", "?"), len(s)))
        print("order " + " ".join(str(x[2]) for x in s))
    for tid in threads:
        if tid not in slices and threads[tid].get("events", 0) > 1:
            fail("thread %s has events but no slice" % tid)
    for tid, t in sorted(tasks.items()):
        print("task %d root=%d slices %d threads %s name %s"
              % (tid, t["root"], t["slices"], ",".join(str(x) for x in sorted(t["threads"])), t["name"]))
    for name, n in sorted(instants.items()):
        print("instant %s %d" % (name.replace(" ", "_"), n))
    print("flows %d %d" % (flows["s"], flows["f"]))


main()
