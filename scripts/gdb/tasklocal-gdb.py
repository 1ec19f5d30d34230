# gdb commands for tasklocal: the tasks of a process and their locals, from
# a core file or a live process.
#
#   tl tasks              every task the library knows
#   tl locals [ID]        the values bound in a task (default: the selected
#                         thread's), the threads' and the custom owners'
#   tl bt ID|all          where a suspended task is, unwound by gdb from the
#                         registers its last switch saved
#   tl stats              the counters of TASKLOCAL_STATS=1's line
#
# gdb loads this file by itself next to the library it belongs to
# (libtasklocal.so.VERSION-gdb.py in $prefix/share/gdb/auto-load/$libdir,
# or libtasklocal.so-gdb.py next to a build tree's library) once the path
# is allowed (add-auto-load-safe-path), or by hand: source FILE.
#
# Everything is read from the library's own structures through its DWARF
# debug information: the program itself needs none. The starting point is
# the constant tl__debug (shim/debug.c), whose layout version this file
# checks first; from it, only the structs its pointers name and the
# layouts it gives as numbers are read (shim/internal.h, "debug.c"). No
# function of the process is ever called, so a core file works as well as
# a live process.

import functools
import re
import struct

import gdb
import gdb.unwinder

LAYOUT_VERSION = 4
MAGIC = b"tasklocal-debug\0"

NEW, RUNNING, SUSPENDED, FINISHED, ABANDONED, RELEASED = range(6)
F_ROOT, F_STARTED, F_MADE = 0x1, 0x8, 0x10
SCOPES = {0: "task", 1: "thread", 2: "custom"}
KINDS = {0: "parked", 1: "leaked", 2: "suppressed"}   # enum tl__kind (shim/reach.h)

# Offsets of glibc's x86_64 ucontext_t (sys/ucontext.h): uc_mcontext.gregs
# starts at byte 40, and the REG_* indexes below are glibc's. swapcontext
# (sysdeps/unix/sysv/linux/x86_64/swapcontext.S) saves the callee-saved
# registers, the argument registers, RSP and RIP (the return address of
# the call, as if swapcontext had just returned).
UC_GREGS = 40
GREGS = {"r8": 0, "r9": 1, "r12": 4, "r13": 5, "r14": 6, "r15": 7, "rdi": 8, "rsi": 9,
         "rbp": 10, "rbx": 11, "rdx": 12, "rcx": 14, "rsp": 15, "rip": 16}

MAX_TASKS = 1 << 22                        # a list longer than this is taken as corrupt
MAX_FRAMES = 64
CODE_SECTIONS = (".text", ".init", ".fini", ".plt", ".plt.got", ".plt.sec", ".iplt")


class Mismatch(gdb.GdbError):
    pass


def _u(data, off, size):
    return int.from_bytes(bytes(data[off:off + size]), "little")


def plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


class Layout:
    """The offsets and sizes of a struct's fields, from its DWARF type."""

    def __init__(self, type_, names):
        self.type = type_.strip_typedefs()
        self.size = self.type.sizeof
        self.fields = {}
        have = {f.name: f for f in self.type.fields()}
        for name in names:
            f = have.get(name)
            if f is None or f.bitpos is None or f.bitpos % 8:
                raise Mismatch("tasklocal: the library's %s has no field '%s': it does not match this "
                               "extension (layout %d)" % (self.type, name, LAYOUT_VERSION))
            self.fields[name] = (f.bitpos // 8, f.type.strip_typedefs().sizeof)

    def offset(self, name):
        return self.fields[name][0]

    def parse(self, data):
        return {name: _u(data, off, size) for name, (off, size) in self.fields.items()}


class Task:
    def __init__(self, addr, f):
        self.addr = addr
        self.id = f["id"]
        self.lo, self.hi = f["lo"], f["hi"]
        self.vt = f["vt"]
        self.ctx = f["ctx"]
        self.entry = f["entry"]
        self.parent = f["parent"]
        self.state = f["state"]
        self.flags = f["flags"]
        self.mapped = f["mapped"]
        self.x = f["x"]
        self.lnext = f["lnext"]
        self.ran_on = f["ran_on"]
        self.name = None
        self.held = 0
        self.thread = None                 # the Thread whose root this is, or that runs it
        self.kept = False

    @property
    def root(self):
        return bool(self.flags & F_ROOT)

    def table(self):
        """The value table that holds what the task has bound."""
        return self.held if self.state == ABANDONED else self.vt


class Thread:
    def __init__(self, addr, f, root):
        self.addr = addr
        self.current = f["current"]
        self.override = f["override"]
        self.switches = f["switches"]
        self.untracked = f["untracked"]
        self.uncounted = f["uncounted"]
        self.made_here = f["made_here"]
        self.finished_here = f["finished_here"]
        self.released_here = f["released_here"]
        self.tvt = f["tvt"]
        self.next = f["next"]
        self.root = root
        self.gdb_thread = None             # the gdb.InferiorThread running it


class Key:
    def __init__(self, key, name, scope, disc):
        self.key, self.name, self.scope, self.disc = key, name, scope, disc

    def label(self):
        if self.name is not None:
            return 'key %d "%s"' % (self.key, self.name)
        return "key %d" % self.key


class Library:
    """One reading of the library's state in the selected inferior."""

    def __init__(self):
        self.inferior = gdb.selected_inferior()
        if self.inferior is None or not self.inferior.threads():
            raise gdb.GdbError("tasklocal: no process: run or attach to the program, or load a core file")
        self.objfile = self._find_objfile()
        self._read_anchor()
        self._code = None
        self._keys = {}
        self._mapped = False
        self.threads = self._read_threads()

    # The tasks are read when a command first needs them: 100,000 take gdb
    # about 1.6 seconds, which tl stats need not wait for.
    @functools.cached_property
    def tasks(self):
        return self._read_tasks()

    @functools.cached_property
    def by_id(self):
        return {t.id: t for t in self.tasks}

    # ---- finding the library and checking it --------------------------

    def _find_objfile(self):
        """The library's objfile with its debug information: the library
        itself when unstripped, or the separate debug file gdb found for it
        (its owner is then the library)."""
        found = None
        for objfile in gdb.objfiles():
            lib = objfile.owner or objfile
            if lib.filename.rsplit("/", 1)[-1].startswith("libtasklocal.so"):
                if objfile.lookup_global_symbol("tl__debug") is not None:
                    return objfile
                found = found or lib
        if found is not None:
            raise gdb.GdbError(
                "tasklocal: %s has no debug information: the tl commands read the library's structures "
                "from its DWARF. Build it with -g (the default) and do not strip it, or install its "
                "debug symbols." % found.filename)
        raise gdb.GdbError("tasklocal not loaded: no libtasklocal.so among this process's shared libraries")

    def _read_anchor(self):
        sym = self.objfile.lookup_global_symbol("tl__debug")
        self.block = sym.symtab.global_block()
        try:
            anchor = sym.value()
            magic = bytes(self.read(int(anchor.address), len(MAGIC)))
        except gdb.error as e:
            raise gdb.GdbError("tasklocal: cannot read the library's anchor tl__debug: %s" % e)
        if magic != MAGIC:
            raise gdb.GdbError("tasklocal: tl__debug in %s is not the anchor this extension knows "
                               "(magic %r)" % (self.objfile.filename, magic))
        version = int(anchor["version"])
        if version != LAYOUT_VERSION:
            raise gdb.GdbError(
                "tasklocal: %s has debug layout %d and this extension reads layout %d: load the extension "
                "shipped with that library (source its libtasklocal.so*-gdb.py)"
                % (self.objfile.filename, version, LAYOUT_VERSION))
        try:
            self.version = self.read_string(int(anchor["lib_version"]), 32)
            tasks, threads = anchor["tasks"].dereference(), anchor["threads"].dereference()
            keys, owners = anchor["keys"].dereference(), anchor["owners"].dereference()
            task_type = tasks["live"].type.target().target()
            self.task_l = Layout(task_type, ("lo", "hi", "vt", "id", "ctx", "entry", "parent", "state",
                                             "flags", "mapped", "ran_on", "lnext", "x"))
            ext_type = task_type.strip_typedefs()["x"].type.target()
            self.ext_l = Layout(ext_type, ("name", "held"))
            thread_type = threads["list"].type.target().target()
            self.thread_l = Layout(thread_type, ("current", "override", "switches", "untracked", "uncounted",
                                                 "made_here", "finished_here", "released_here", "tvt",
                                                 "next", "root"))
            attr_type = gdb.lookup_type("tl_key_attr_t", self.block)
            self.attr_l = Layout(attr_type, ("name", "scope", "disc"))
            for what, want, got in (("struct tl__task", int(anchor["task_size"]), self.task_l.size),
                                    ("struct tl__task_ext", int(anchor["task_ext_size"]), self.ext_l.size),
                                    ("struct tl__thread", int(anchor["thread_size"]), self.thread_l.size)):
                if want != got:
                    raise Mismatch("tasklocal: the library says %s is %d bytes, its debug information %d: "
                                   "the debug information belongs to another build" % (what, want, got))
            self.live_head = int(tasks["live"])
            self.kept_head = int(tasks["kept"])
            self.counts = {n: self.read_u64(int(tasks[n])) for n in ("made", "finished", "abandoned", "peak", "released")}
            self.thread_head = int(threads["list"])
            self.dead_switches = self.read_u64(int(threads["dead_switches"]))
            self.dead_untracked = self.read_u64(int(threads["dead_untracked"]))
            self.dead_made = self.read_u64(int(threads["dead_made"]))
            self.dead_finished = self.read_u64(int(threads["dead_finished"]))
            self.dead_released = self.read_u64(int(threads["dead_released"]))
            self.keys = {n: int(keys[n]) for n in ("chunks", "nslots", "created", "chunk_bits", "rec_size",
                                                   "rec_gen", "rec_attr")}
            self.owners = {n: int(owners[n]) for n in ("buckets", "nbuckets", "disc", "owner", "vt", "next")}
            self.trampoline = (int(anchor["trampoline"]), int(anchor["trampoline_end"]))
            self._read_kinds(anchor["scan"].dereference())
        except gdb.MemoryError as e:
            raise gdb.GdbError("tasklocal: cannot read the library's registries: %s" % e)
        except (gdb.error, KeyError, AttributeError) as e:
            if isinstance(e, gdb.GdbError):
                raise
            raise Mismatch("tasklocal: the library's debug information does not match this extension "
                           "(layout %d): %s" % (LAYOUT_VERSION, e))

    def _read_kinds(self, scan):
        """What the last leak scan concluded (shim/reach.c): task id -> kind.
        The scan runs inside the process, for a report (the exit report, a
        dump), never here: tasks made since have no kind."""
        self.scans = self.read_u64(int(scan["scans"]))
        self.kinds = {}
        n = min(self.read_u64(int(scan["n"])), MAX_TASKS)
        table = self.read_u64(int(scan["seen"]))
        if self.scans == 0 or n == 0 or table == 0:
            return
        try:
            data = bytes(self.read(table, 16 * n))
        except gdb.MemoryError:
            return
        for i in range(n):
            task_id, kind = struct.unpack_from("<QQ", data, 16 * i)
            self.kinds[task_id] = KINDS.get(kind, "kind %d?" % kind)

    # ---- memory --------------------------------------------------------

    def read(self, addr, size):
        return self.inferior.read_memory(addr, size)

    def read_u64(self, addr):
        return _u(self.read(addr, 8), 0, 8)

    def read_u32(self, addr):
        return _u(self.read(addr, 4), 0, 4)

    def read_string(self, addr, limit=256):
        if addr == 0:
            return None
        try:
            data = bytes(self.read(addr, limit))
        except gdb.MemoryError:
            return "<unreadable string at 0x%x>" % addr
        return data.split(b"\0", 1)[0].decode("utf-8", "replace")

    # ---- the registries ------------------------------------------------

    def _read_task(self, addr):
        t = Task(addr, self.task_l.parse(self.read(addr, self.task_l.size)))
        if t.x:
            try:
                x = self.ext_l.parse(self.read(t.x, self.ext_l.size))
                t.name = self.read_string(x["name"])
                t.held = x["held"]
            except gdb.MemoryError:
                t.name = "<unreadable>"
        return t

    def _walk(self, head, kept):
        out, seen = [], set()
        addr = self.read_u64(head)
        while addr and addr not in seen and len(out) < MAX_TASKS:
            seen.add(addr)
            try:
                t = self._read_task(addr)
            except gdb.MemoryError:
                gdb.write("tasklocal: a task record at 0x%x is unreadable; the list stops there\n" % addr)
                break
            t.kept = kept
            out.append(t)
            addr = t.lnext
        return out

    def _read_tasks(self):
        tasks = [t for t in self._walk(self.live_head, False) if t.id != 0]
        tasks += [t for t in self._walk(self.kept_head, True) if t.id != 0]
        roots = {th.root.addr: th for th in self.threads}
        by_addr = {th.current: th for th in self.threads}
        for t in tasks:
            if t.addr in roots:
                t.thread = roots[t.addr]
            elif t.state == RUNNING and t.addr in by_addr:
                t.thread = by_addr[t.addr]
        # A root made while the registry was locked by a signal handler
        # stays out of the live list; its thread still knows it.
        listed = {t.addr for t in tasks}
        for th in self.threads:
            if th.root.addr not in listed and th.root.id != 0:
                th.root.thread = th
                tasks.append(th.root)
        tasks.sort(key=lambda t: t.id)
        return tasks

    def _read_threads(self):
        out, seen = [], set()
        root_off = self.thread_l.offset("root")
        addr = self.read_u64(self.thread_head)
        while addr and addr not in seen and len(out) < 1 << 16:
            seen.add(addr)
            f = self.thread_l.parse(self.read(addr, self.thread_l.size))
            th = Thread(addr, f, self._read_task(addr + root_off))
            out.append(th)
            addr = th.next
        out.reverse()                      # the list holds the newest first
        return out

    def map_threads(self):
        """Which gdb thread runs which of the library's thread states: the
        thread's tl__tls when gdb can read thread-local storage (libthread_db),
        else the stack pointer, inside the stack of the task the state says
        runs there or of the thread's root."""
        if self._mapped:
            return
        self._mapped = True
        by_addr = {th.addr: th for th in self.threads}
        tls = self.objfile.lookup_global_symbol("tl__tls")
        with SavedSelection():
            for gt in self.inferior.threads():
                try:
                    gt.switch()
                except gdb.error:
                    continue
                th = None
                if tls is not None:
                    try:
                        th = by_addr.get(int(tls.value(gdb.newest_frame())))
                    except (gdb.error, RuntimeError, TypeError):
                        th = None
                if th is None:
                    try:
                        sp = int(gdb.newest_frame().read_register("rsp"))
                    except gdb.error:
                        continue
                    th = self._thread_at(sp)
                if th is not None and th.gdb_thread is None:
                    th.gdb_thread = gt

    def _thread_at(self, sp):
        tasks = {t.addr: t for t in self.tasks}
        for th in self.threads:
            cur = tasks.get(th.current)
            if cur is not None and cur.lo <= sp < cur.hi:
                return th
        for th in self.threads:
            if th.root.lo <= sp < th.root.hi:
                return th
        return None

    def thread_of_gdb(self, gt):
        self.map_threads()
        for th in self.threads:
            if th.gdb_thread is not None and th.gdb_thread.ptid == gt.ptid:
                return th
        return None

    def thread_label(self, th):
        if th is None:
            return "-"
        self.map_threads()
        if th.gdb_thread is not None:
            return str(th.gdb_thread.num)
        return "?(state 0x%x)" % th.addr

    def thread_of(self, t):
        """The thread a task runs on, or whose own stack it is, or that it
        last left (the record keeps the low half of that thread state's
        address); None when it never ran or that thread is gone."""
        th = self.running_on(t) or t.thread
        if th is not None or t.ran_on == 0:
            return th
        for th in self.threads:
            if th.addr & 0xffffffff == t.ran_on:
                return th
        return None

    def thread_text(self, t):
        th = self.thread_of(t)
        if th is None and t.ran_on != 0 and t.state != NEW:
            return "exited"
        return self.thread_label(th)

    # ---- keys and values -----------------------------------------------

    def key(self, key):
        """The key's record when the key is live, else None."""
        if key in self._keys:
            return self._keys[key]
        k, slot, gen = self.keys, (key & 0xffffffff) >> 1, key >> 32
        info = None
        try:
            if not key & 1 and slot < self.read_u32(k["nslots"]):
                chunk = self.read_u64(k["chunks"] + 8 * (slot >> k["chunk_bits"]))
                if chunk:
                    rec = chunk + k["rec_size"] * (slot & ((1 << k["chunk_bits"]) - 1))
                    if self.read_u32(rec + k["rec_gen"]) == gen:
                        a = self.attr_l.parse(self.read(rec + k["rec_attr"], self.attr_l.size))
                        info = Key(key, self.read_string(a["name"]), a["scope"], a["disc"])
        except gdb.MemoryError:
            info = None
        self._keys[key] = info
        return info

    def values(self, handle):
        """The live (key, value) pairs of a value table: the handle is the
        address of the first entry plus twice the capacity minus one."""
        if handle == 0:
            return [], 0
        base = handle & (handle + 2)
        n = ((handle - base) >> 1) + 1
        if n > 1 << 24:
            return [], 0
        try:
            data = self.read(base, 16 * n)
        except gdb.MemoryError:
            return None, 0
        out, dead = [], 0
        for i in range(n):
            key, value = struct.unpack_from("<QQ", data, 16 * i)
            if key <= 1:
                continue
            info = self.key(key)
            if info is None:
                dead += 1
            else:
                out.append((info, value))
        return out, dead

    def custom_owners(self):
        o = self.owners
        out = []
        try:
            buckets, nb = self.read_u64(o["buckets"]), self.read_u32(o["nbuckets"])
            for i in range(nb if buckets else 0):
                rec, hops = self.read_u64(buckets + 8 * i), 0
                while rec and hops < 1 << 16:
                    out.append((self.read_u64(rec + o["disc"]), self.read_u64(rec + o["owner"]),
                                self.read_u64(rec + o["vt"])))
                    rec, hops = self.read_u64(rec + o["next"]), hops + 1
        except gdb.MemoryError:
            gdb.write("tasklocal: the custom owners' table is unreadable\n")
        return out

    # ---- what a task is doing ------------------------------------------

    def running_on(self, t):
        """The thread state that has t as its current task, or None."""
        for th in self.threads:
            if th.current == t.addr:
                return th
        return None

    def state_text(self, t):
        text = self._state_text(t)
        kind = self.kinds.get(t.id) if t.state != RUNNING and t.state != FINISHED else None
        return text + ", " + kind if kind is not None else text

    def _state_text(self, t):
        if t.state == RUNNING:
            th = self.running_on(t) or t.thread
            if th is not None:
                return "running on thread %s" % self.thread_label(th)
            return "running"
        if t.state == FINISHED:
            return "finished, record waiting for reuse"
        if t.state == ABANDONED:
            return "abandoned"
        if t.state == RELEASED:
            return "released (its stack was given back), ending"
        if t.state == NEW:
            return "never started"
        if t.state == SUSPENDED:
            return "suspended"
        return "state %d?" % t.state

    def shared_with(self, t):
        """Another live task whose stack overlaps t's: coroutines of one
        shared stack copy it out and back, so t's saved frames are gone."""
        if t.root:
            return None
        for s in self.tasks:
            if (s is not t and not s.root and s.state not in (FINISHED, ABANDONED)
                    and t.lo < s.hi and s.lo < t.hi):
                return s
        return None

    def code_ranges(self):
        if self._code is None:
            self._code = []
            text = gdb.execute("info files", to_string=True)
            for m in re.finditer(r"0x([0-9a-f]+) - 0x([0-9a-f]+) is (\S+)", text):
                if m.group(3) in CODE_SECTIONS:
                    self._code.append((int(m.group(1), 16), int(m.group(2), 16)))
        return self._code

    def in_code(self, pc):
        return any(lo <= pc < hi for lo, hi in self.code_ranges())

    def saved_registers(self, t):
        """The registers t's last switch saved, or (None, why)."""
        if not t.flags & F_STARTED:
            return None, "it never ran"
        if not t.mapped or t.ctx == 0:
            return None, "the ucontext_t it saved itself into was reused"
        if t.flags & F_MADE:
            return None, "it left without saving its context (a jump the library did not see)"
        try:
            data = self.read(t.ctx + UC_GREGS, 8 * 23)
        except gdb.MemoryError:
            return None, "its ucontext_t at 0x%x is not readable" % t.ctx
        regs = {name: _u(data, 8 * i, 8) for name, i in GREGS.items()}
        if not t.lo <= regs["rsp"] < t.hi:
            return None, ("the stack pointer saved in its ucontext_t at 0x%x (0x%x) is outside its stack "
                          "[0x%x, 0x%x): the context was reused" % (t.ctx, regs["rsp"], t.lo, t.hi))
        try:
            self.read(regs["rsp"], 8)
        except gdb.MemoryError:
            return None, "its stack at 0x%x is not readable (freed, or not in the core)" % regs["rsp"]
        if not self.in_code(regs["rip"]):
            return None, ("the resume address saved in its ucontext_t at 0x%x (0x%x) is in no loaded "
                          "object's code" % (t.ctx, regs["rip"]))
        return regs, None

    def task_arg(self, arg, default_current=True):
        arg = arg.strip()
        if arg == "":
            if not default_current:
                raise gdb.GdbError("tasklocal: which task? Give its id (see tl tasks)")
            th = self.thread_of_gdb(gdb.selected_thread())
            if th is None:
                raise gdb.GdbError("tasklocal: the selected thread has no tasklocal state; give a task id")
            t = self.by_addr(th.override or th.current)
            if t is None:
                raise gdb.GdbError("tasklocal: the selected thread's current task (0x%x) is not in the registry"
                                   % (th.override or th.current))
            return t
        try:
            tid = int(arg, 0)
        except ValueError:
            raise gdb.GdbError("tasklocal: '%s' is not a task id" % arg)
        t = self.by_id.get(tid)
        if t is None:
            raise gdb.GdbError("tasklocal: no task %d (tl tasks lists them)" % tid)
        return t

    def by_addr(self, addr):
        for t in self.tasks:
            if t.addr == addr:
                return t
        return None


class SavedSelection:
    """Restores the selected thread and frame on the way out. The frame is
    found again by its level: the frames of the thread may have been made
    anew meanwhile (the backtrace of a task invalidates them)."""

    def __enter__(self):
        self.thread = gdb.selected_thread()
        try:
            self.level = gdb.selected_frame().level()
        except gdb.error:
            self.level = None
        return self

    def __exit__(self, *exc):
        try:
            if self.thread is not None and self.thread.is_valid():
                self.thread.switch()
                if self.level:
                    frame = gdb.newest_frame()
                    for _ in range(self.level):
                        frame = frame.older() if frame is not None else None
                    if frame is not None:
                        frame.select()
        except gdb.error:
            pass
        return False


def symbol(pc, with_module=False):
    """fn+0x1c for an address, from gdb's symbols (minimal symbols do for a
    program without debug information)."""
    try:
        text = gdb.execute("info symbol 0x%x" % pc, to_string=True).strip()
    except gdb.error:
        text = ""
    # "name + 12 in section .text of /lib/x.so"; C++ names hold spaces.
    m = re.match(r"(.+?)(?: \+ (\d+))? in section \S+(?: of (\S+))?$", text)
    if not m:
        return "0x%x" % pc
    out = m.group(1) + ("+%#x" % int(m.group(2)) if m.group(2) else "")
    if with_module and m.group(3):
        out += " (%s)" % m.group(3).rsplit("/", 1)[-1]
    return out


# ---------------------------------------------------------------------------
# Unwinding a suspended task: gdb unwinds the frames of a thread from its
# registers, and a suspended task has none but those its last swapcontext
# saved. While a backtrace is taken, this unwinder claims the innermost
# frame of the selected thread and says that its caller's registers are
# the saved ones: every frame from there on is the task's, unwound by gdb
# itself (DWARF CFI, symbols, file:line where the program has debug
# information), on a core file as on a live process. The claimed frame is
# the thread's own and is not shown.
# ---------------------------------------------------------------------------

class _FrameId:
    def __init__(self, sp, pc):
        self.sp, self.pc = sp, pc


class SavedContextUnwinder(gdb.unwinder.Unwinder):
    def __init__(self):
        super().__init__("tasklocal")
        self.enabled = False               # gdb does not even call it outside tl bt
        self.regs = None
        self.ptid = None
        self.claimed = None

    def __call__(self, pending):
        if self.regs is None or self.claimed is not None:
            return None
        thread = gdb.selected_thread()
        if thread is None or thread.ptid != self.ptid:
            return None
        self.claimed = pending.level()
        pc = pending.read_register("rip")
        sp = pending.read_register("rsp")
        # The claimed frame's id lies just below the task's stack pointer,
        # so that gdb sees the task's frames as its callers, outer to it.
        info = pending.create_unwind_info(_FrameId(gdb.Value(self.regs["rsp"] - 16).cast(sp.type), pc))
        for name, value in self.regs.items():
            reg_type = pending.read_register(name).type
            info.add_saved_register(name, gdb.Value(value).cast(reg_type))
        return info

    def begin(self, regs):
        self.regs = regs
        self.ptid = gdb.selected_thread().ptid
        self.claimed = None
        self.enabled = True
        gdb.invalidate_cached_frames()

    def end(self):
        self.enabled = False
        self.regs = None
        self.claimed = None
        gdb.invalidate_cached_frames()


_unwinder = SavedContextUnwinder()
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)


def frame_line(i, frame):
    pc = frame.pc()
    name = frame.name()
    func = frame.function()
    args = []
    if func is not None:
        try:
            block = frame.block()
            while block is not None and block.function is None:
                block = block.superblock
            for sym in block or ():
                if sym.is_argument:
                    try:
                        args.append("%s=%s" % (sym.name, frame.read_var(sym)))
                    except (gdb.error, ValueError):
                        args.append("%s=<unavailable>" % sym.name)
        except (gdb.error, RuntimeError):
            pass
    if name is None:
        name = symbol(pc)
    sal = frame.find_sal()
    where = ""
    if sal is not None and sal.symtab is not None and sal.line:
        where = " at %s:%d" % (sal.symtab.filename, sal.line)
    else:
        lib = gdb.solib_name(pc)
        if lib:
            where = " from %s" % lib
    return "#%-2d 0x%016x in %s (%s)%s" % (i, pc, name, ", ".join(args), where)


def frames_from(lib, first, skip_level=None):
    """The lines of a backtrace from frame first on, stopping at the
    library's trampoline, where every task's stack begins."""
    lines = []
    frame, i = first, 0
    lo, hi = lib.trampoline
    try:
        while frame is not None and i < MAX_FRAMES:
            if skip_level is not None and frame.level() <= skip_level:
                frame = frame.older()
                continue
            if lo <= frame.pc() < hi:
                break
            lines.append(frame_line(i, frame))
            i += 1
            older = frame.older()
            if older is None:
                reason = frame.unwind_stop_reason()
                if reason not in (gdb.FRAME_UNWIND_NO_REASON, gdb.FRAME_UNWIND_OUTERMOST):
                    lines.append("Backtrace stopped: %s" % gdb.frame_stop_reason_string(reason))
            frame = older
    except gdb.error as e:
        # A stack overwritten or unmapped since: what was unwound stands.
        lines.append("Backtrace stopped: %s" % e)
        return lines
    if i == MAX_FRAMES and frame is not None:
        lines.append("(more frames follow)")
    return lines


def task_title(lib, t):
    name = ' "%s"' % t.name if t.name is not None else ""
    made = "; made by task %d" % t.parent if t.parent else ""
    return "task %d%s: %s%s" % (t.id, name, lib.state_text(t), made)


def task_backtrace(lib, t):
    out = [task_title(lib, t)]
    if t.state == RUNNING:
        th = lib.running_on(t) or t.thread
        lib.map_threads()
        if th is None or th.gdb_thread is None:
            out.append("  it runs on a thread gdb does not show")
            return out
        out.append("  the backtrace of thread %d, where it runs:" % th.gdb_thread.num)
        with SavedSelection():
            th.gdb_thread.switch()
            out += ["  " + line for line in frames_from(lib, gdb.newest_frame())]
        return out
    if t.state == NEW:
        out.append("  no frames: it never started (it will start in %s)" % symbol(t.entry))
        return out
    if t.state in (FINISHED, ABANDONED):
        out.append("  no frames: it %s" % ("finished" if t.state == FINISHED else "was abandoned"))
        return out
    regs, why = lib.saved_registers(t)
    if regs is None:
        out.append("  context not available: %s" % why)
        return out
    shared = lib.shared_with(t)
    if shared is not None:
        out.append("  unreliable: its stack is shared with task %d, and copied out and back" % shared.id)
    with SavedSelection():
        _unwinder.begin(regs)
        try:
            top = gdb.newest_frame()
            top.older()                    # makes the unwinder claim the innermost frame
            lines = frames_from(lib, top, skip_level=_unwinder.claimed)
        finally:
            _unwinder.end()
    if not lines:
        lines = ["#0  0x%016x in %s ()" % (regs["rip"], symbol(regs["rip"]))]
    out += ["  " + line for line in lines]
    return out


# ---------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------

class TlPrefix(gdb.Command):
    """Tasks and task-local values of a process under tasklocal.

tl tasks          every task the library knows
tl locals [ID]    the values bound in a task (default: the selected thread's current task)
tl bt ID|all      where a suspended task is (all: every suspended task)
tl stats          the counters of the stats line"""

    def __init__(self):
        super().__init__("tl", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class TlTasks(gdb.Command):
    """Every task tasklocal knows: id, state, thread, number of locals, name, entry.

A '*' marks the task running on each thread. THREAD is gdb's thread number
of the thread the task runs on, or last ran on ("exited" when that thread
is gone); a root task's is the thread whose own stack it is."""

    def __init__(self):
        super().__init__("tl tasks", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        lib = Library()
        current = {th.current for th in lib.threads}
        rows = []
        for t in lib.tasks:
            values, _ = lib.values(t.table())
            nvalues = "?" if values is None else str(len(values))
            if t.root:
                entry = "(thread %s's own stack)" % lib.thread_label(t.thread)
            else:
                entry = symbol(t.entry) if t.entry else "-"
            rows.append(("*" if t.addr in current else " ", str(t.id), lib.state_text(t),
                         lib.thread_text(t), nvalues, t.name if t.name is not None else "-", entry))
        gdb.write("tasklocal %s: %s, %s\n" % (lib.version, plural(len(lib.tasks), "task"),
                                               plural(len(lib.threads), "thread")))
        if lib.scans:
            gdb.write("leaked or parked: as the last leak scan in the process found them (scan %d); "
                      "tasks made since have no kind\n" % lib.scans)
        head = (" ", "ID", "STATE", "THREAD", "LOCALS", "NAME", "ENTRY")
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        for r in [head] + rows:
            cells = [r[0], r[1].rjust(widths[1])] + [r[i].ljust(widths[i]) for i in range(2, len(r))]
            gdb.write(" ".join(cells).rstrip() + "\n")


class TlLocals(gdb.Command):
    """The values bound in a task: tl locals [ID] (default: the selected thread's task).

Then the thread-scope values of every thread and the values of every
custom-scope owner, which belong to no task."""

    def __init__(self):
        super().__init__("tl locals", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        lib = Library()
        t = lib.task_arg(arg)
        values, dead = lib.values(t.table())
        title = task_title(lib, t)
        if values is None:
            gdb.write("%s: its value table at 0x%x is unreadable\n" % (title, t.table()))
        else:
            held = " (held when abandoned)" if t.state == ABANDONED else ""
            gdb.write("%s: %s%s\n" % (title, plural(len(values), "task-scope value"), held))
            self.show(values, "  ")
            if dead:
                gdb.write("  (%d more of deleted keys, no longer reachable)\n" % dead)
        runs = lib.thread_of(t)
        for th in lib.threads:
            tv, _ = lib.values(th.tvt)
            if not tv:
                continue
            mark = ""
            if th is runs:
                mark = " (where this task runs)" if t.state == RUNNING else " (where this task last ran)"
            gdb.write("thread scope of thread %s%s, root task %d: %s\n"
                      % (lib.thread_label(th), mark, th.root.id, plural(len(tv), "value")))
            self.show(tv, "  ")
        owners = lib.custom_owners()
        shown = [(d, o, lib.values(vt)[0]) for d, o, vt in owners]
        shown = [s for s in shown if s[2]]
        if shown:
            gdb.write("custom scope: %s with values\n" % plural(len(shown), "owner"))
            for disc, owner, cv in shown:
                gdb.write("  owner 0x%x of discriminator %s: %s\n" % (owner, self.where(disc), plural(len(cv), "value")))
                self.show(cv, "    ")

    @staticmethod
    def where(addr):
        s = symbol(addr)
        return "0x%x" % addr if s.startswith("0x") else "0x%x <%s>" % (addr, s)

    @staticmethod
    def show(values, indent):
        for info, value in sorted(values, key=lambda kv: kv[0].key):
            scope = "" if info.scope == 0 else " (%s scope)" % SCOPES.get(info.scope, "?")
            gdb.write("%s%s = 0x%x%s\n" % (indent, info.label(), value, scope))


class TlBt(gdb.Command):
    """Where a suspended task is: tl bt ID, or tl bt all for every suspended task.

gdb unwinds the task's stack from the registers its last switch saved in
its ucontext_t. A running task's backtrace is its thread's. Tasks whose
coroutines share one stack, copied out and back, are marked unreliable."""

    def __init__(self):
        super().__init__("tl bt", gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        lib = Library()
        if arg.strip() == "all":
            tasks = [t for t in lib.tasks if t.state == SUSPENDED]
            if not tasks:
                gdb.write("no suspended tasks\n")
            for t in tasks:
                gdb.write("\n".join(task_backtrace(lib, t)) + "\n")
            return
        t = lib.task_arg(arg, default_current=False)
        gdb.write("\n".join(task_backtrace(lib, t)) + "\n")


class TlStats(gdb.Command):
    """The counters of the stats line (TASKLOCAL_STATS=1), read now."""

    def __init__(self):
        super().__init__("tl stats", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        lib = Library()
        c = lib.counts
        switches = lib.dead_switches + sum(th.switches for th in lib.threads)
        untracked = lib.dead_untracked + sum(th.untracked for th in lib.threads)
        # Tasks of the common loop are counted on their threads (task/registry.c).
        made = c["made"] + lib.dead_made + sum(th.made_here for th in lib.threads)
        finished = (c["finished"] + lib.dead_finished +
                    sum(th.uncounted + th.finished_here for th in lib.threads))
        abandoned = c["abandoned"]
        released = c["released"] + lib.dead_released + sum(th.released_here for th in lib.threads)
        keys = lib.read_u64(lib.keys["created"])
        gdb.write("tasklocal: stats: created=%d finished=%d abandoned=%d released=%d switches=%d untracked=%d "
                  "peak=%d keys=%d\n" % (made & (2**64 - 1), finished, abandoned, released, switches, untracked,
                                          c["peak"], keys))
        if lib.scans:
            kinds = list(lib.kinds.values())
            gdb.write("tasklocal: last leak scan (scan %d): %d leaked, %d parked, %d suppressed\n"
                      % (lib.scans, kinds.count("leaked"), kinds.count("parked"), kinds.count("suppressed")))


TlPrefix()
TlTasks()
TlLocals()
TlBt()
TlStats()
