#!/usr/bin/env python3
"""make check-trace-tool: scripts/tasklocal-trace on a real trace.

    check_tool.py SRCDIR BUILDDIR

Runs tests/trace/trace_demo (an unmodified M:N ucontext program) through
scripts/tasklocal-run --trace, then checks:
- tasklocal-trace FILE summary: one row per task, whose slices are the
  switch-ins the program counted, and the per-thread and longest-slice
  tables; --help, --version and the errors (a missing file, a file that is
  not a trace, a usage error) with their exit statuses;
- tasklocal-trace FILE svg OUT.svg: the picture parses as XML (xml.etree),
  has a lane per thread, a slice of every task in the task's own colour and
  a label on the long ones;
- headless Chromium's screenshot of the picture (a PNG read here with zlib)
  is not empty: it has many colours, and every task's colour is among its
  pixels. Without Chromium (scripts/install-deps --chromium installs it)
  that part is skipped, and says so.
Python 3's standard library only. Exits 1 on the first failure.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

SVG_NS = "{http://www.w3.org/2000/svg}"


def fail(msg):
    print("check_tool: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(argv, env=None, expect=0):
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    if expect is not None and p.returncode != expect:
        fail("%s exited with %d (expected %d):\n%s%s" % (" ".join(argv), p.returncode, expect, p.stdout, p.stderr))
    return p


def read_png(path):
    """The pixels of an 8-bit RGB or RGBA, non-interlaced PNG, as a list of
    rows of (r, g, b) tuples."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("%s is not a PNG" % path)
    pos, idat, header = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, ctype, _, _, interlace = header
    if depth != 8 or ctype not in (2, 6) or interlace != 0:
        fail("%s: a PNG this reader does not know (depth %d, colour type %d, interlace %d)"
             % (path, depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xff
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xff
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif ftype == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xff
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return rows


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def main():
    if len(sys.argv) != 3:
        fail("usage: check_tool.py SRCDIR BUILDDIR")
    src, build = sys.argv[1], sys.argv[2]
    tool = os.path.join(src, "scripts", "tasklocal-trace")
    runner = os.path.join(src, "scripts", "tasklocal-run")
    demo = os.path.join(build, "tests", "trace", "trace_demo")
    tmp = tempfile.mkdtemp(prefix="tltool.")
    try:
        check(tool, runner, demo, build, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check(tool, runner, demo, build, tmp):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKLOCAL_", "LD_PRELOAD"))}
    env["TASKLOCAL_LIB"] = os.path.join(build, "libtasklocal.so")
    trace = os.path.join(tmp, "demo.json")
    alone = run([demo], env=env)
    traced = run([runner, "--trace", trace, demo], env=env)
    if traced.stdout != alone.stdout:
        fail("the program's output changed under tasklocal-run --trace:\n%s\nalone:\n%s" % (traced.stdout, alone.stdout))
    counts = [int(x) for x in re.search(r"^switchins (.*)$", alone.stdout, re.M).group(1).split()]
    with open(trace, encoding="utf-8") as f:
        doc = json.load(f)
    tids = {e["tid"] for e in doc["traceEvents"] if e["ph"] == "X"}

    # summary
    out = run([tool, trace, "summary", "--limit", "0"]).stdout
    rows = {}
    for m in re.finditer(r"^  (\d+)\s+(\S+)\s+([\d.]+ [mun]?s)\s+(\d+)\s+([\d.]+ [mun]?s)\s+(\S+( \S+)?)\s+(\S+)",
                         out, re.M):
        rows[int(m.group(1))] = (m.group(2), int(m.group(4)))
    made = sorted(t for t, (name, _) in rows.items() if name != "(root)")
    if [rows[t][1] for t in made] != counts:
        fail("summary's slices per task %s, the program counted %s:\n%s"
             % ([rows[t][1] for t in made], counts, out))
    names = {rows[t][0] for t in made}
    if names != {"render_page", "parse_request", "query_db"}:
        fail("summary names the tasks %s:\n%s" % (sorted(names), out))
    for want in ("threads (busy", "the ten longest slices:", "made->start"):
        if want not in out:
            fail("summary has no %r:\n%s" % (want, out))
    # The hog's 2.5 ms slice is among them (the first made task's, unless
    # the machine preempted others for longer).
    longest = out.split("the ten longest slices:")[1]
    if len(longest.strip().splitlines()) != 11 or "render_page" not in longest:
        fail("the ten longest slices miss the hog's (render_page):\n%s" % longest)
    threads = out.split("threads (busy")[1].split("the ten longest slices:")[0]
    listed = {int(x) for x in re.findall(r"^  (\d+)\s", threads, re.M)}
    if listed != tids or "worker-0" not in threads or "worker-1" not in threads:
        fail("summary does not list the %d threads by name:\n%s" % (len(tids), out))

    # usage and errors
    if "Usage:" not in run([tool, "--help"]).stdout:
        fail("--help prints no usage")
    if run([tool, "--version"]).stdout.strip() != "tasklocal-trace 0.3.0":
        fail("--version")
    p = run([tool, os.path.join(tmp, "missing.json"), "summary"], expect=1)
    if p.stderr.count("\n") != 1 or "cannot read" not in p.stderr:
        fail("a missing file: %r" % p.stderr)
    notrace = os.path.join(tmp, "not-a-trace.json")
    with open(notrace, "w") as f:
        f.write('{"hello": 1}\n')
    p = run([tool, notrace, "summary"], expect=1)
    if "not a trace-event file" not in p.stderr or "Traceback" in p.stderr:
        fail("a JSON file that is no trace: %r" % p.stderr)
    run([tool, trace, "draw"], expect=2)
    run([tool, trace, "svg"], expect=2)

    # svg
    svg = os.path.join(tmp, "demo.svg")
    run([tool, trace, "svg", svg])
    root = ET.parse(svg).getroot()
    if root.tag != SVG_NS + "svg":
        fail("the picture's root is %s" % root.tag)
    slices = [r for r in root.iter(SVG_NS + "rect") if r.get("class") == "slice"]
    fills = {r.get("fill") for r in slices}
    texts = [t.text or "" for t in root.iter(SVG_NS + "text")]
    task_colours = {}
    for r in slices:
        title = r.find(SVG_NS + "title")
        if title is not None:
            m = re.search(r"\(task (\d+)\)", title.text)
            task_colours.setdefault(int(m.group(1)), r.get("fill"))
    for t in made:
        if t not in task_colours:
            fail("task %d has no slice of its own in the picture" % t)
    colours = {task_colours[t] for t in made}
    if len(colours) != len(made):
        fail("the %d tasks share colours: %s" % (len(made), sorted(colours)))
    if not any(x.startswith("render_page") for x in texts):
        fail("no slice is labelled render_page (the long ones should be)")
    for tid in tids:
        if not any(("(%d)" % tid) in x for x in texts):
            fail("no lane for thread %d" % tid)
    if not any(x.endswith(" ms") or x.endswith(" us") for x in texts):
        fail("no time axis labels")
    if len(fills) < len(made) + 1:
        fail("only %d fill colours among the slices" % len(fills))

    # what a browser shows
    chromium = find_chromium()
    if chromium is None:
        print("check_tool: SKIPPED the screenshot: Chromium is not installed (scripts/install-deps --chromium)")
        return
    png = os.path.join(tmp, "demo.png")
    profile = os.path.join(tmp, "profile")
    os.mkdir(profile)
    width = int(root.get("width"))
    height = int(root.get("height"))
    p = run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--user-data-dir=" + profile, "--screenshot=" + png, "--window-size=%d,%d" % (width, height),
             "file://" + svg], expect=None)
    if not os.path.exists(png):
        fail("Chromium wrote no screenshot (exit %d):\n%s" % (p.returncode, p.stderr[-2000:]))
    rows = read_png(png)
    pixels = {}
    for row in rows:
        for px in row:
            pixels[px] = pixels.get(px, 0) + 1
    total = sum(pixels.values())
    background = max(pixels.values())
    if len(pixels) < 20 or background > 0.97 * total:
        fail("the screenshot is (nearly) empty: %d colours, %.1f%% of one" % (len(pixels), 100.0 * background / total))
    for t in made:
        c = task_colours[t]
        rgb = (int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16))
        near = sum(n for px, n in pixels.items() if all(abs(px[i] - rgb[i]) <= 3 for i in range(3)))
        if near < 50:
            fail("task %d's colour %s covers %d pixels of the screenshot" % (t, c, near))
    print("check_tool: tasklocal-trace summary and svg ok; the screenshot has %d colours, every task's among them"
          % len(pixels))


main()
