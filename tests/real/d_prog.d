/* A D program on druntime's fibers, for make check-real and make bench.
 *
 * Debian's druntime is built with Intel CET, and on x86_64 with CET its
 * core.thread.Fiber switches with ucontext (core/thread/fiber.d:
 * makecontext in initStack, swapcontext in fiber_switchContext) instead
 * of its own assembly. A fiber that ends never returns into the
 * makecontext trampoline: druntime marks it TERM and switches away for
 * the last time. Its stack is mmap'd and unmapped when the GC finalizes
 * the Fiber object.
 *
 * The program runs, in order:
 * - std.concurrency Generators: a finite one read to its end, and an
 *   endless one read in part and then kept, suspended;
 * - plain fibers switched round robin, some left suspended on purpose
 *   halfway through their work and kept in a global;
 * - one fiber run to its end, reset() with a new function and run again,
 *   many times (each reset makes the same ucontext_t again);
 * - a pipeline of three std.concurrency threads on a FiberScheduler
 *   (each a fiber), passing messages;
 * - short-lived fibers made, run to their end and dropped, then a GC
 *   collection that finalizes them and unmaps their stacks.
 * Everything it prints depends only on ROUNDS, the first argument
 * (default 1; make bench gives more).
 */
import core.memory : GC;
import core.thread.fiber : Fiber;
import std.concurrency;
import std.conv : to;
import std.stdio : writefln, writeln;

/* Kept on purpose: suspended fibers that a global still refers to. */
__gshared Fiber[] kept;

ulong generators(int rounds)
{
    ulong sum;
    foreach (r; 0 .. rounds) {
        auto fib = new Generator!ulong({
            ulong a = 0, b = 1;
            foreach (i; 0 .. 90) {
                yield(a);
                immutable t = a + b;
                a = b;
                b = t;
            }
        });
        foreach (v; fib)
            sum += v % 1_000_003;
    }
    /* An endless generator of primes, read in part and left suspended. */
    auto primes = new Generator!int({
        for (int n = 2;; n++) {
            bool prime = true;
            for (int d = 2; d * d <= n; d++)
                if (n % d == 0) {
                    prime = false;
                    break;
                }
            if (prime)
                yield(n);
        }
    });
    foreach (i; 0 .. 100) {
        sum += primes.front;
        primes.popFront();
    }
    kept ~= primes;
    return sum;
}

ulong roundRobin(int rounds)
{
    enum workers = 8;
    enum steps = 1000;
    ulong[workers] acc;
    Fiber[workers] fibers;
    foreach (w; 0 .. workers) {
        immutable id = w;
        fibers[w] = new Fiber({
            foreach (s; 0 .. steps * rounds) {
                acc[id] = acc[id] * 31 + s + id;
                Fiber.yield();
            }
        });
    }
    /* Workers 0 and 1 are left halfway, suspended. */
    foreach (s; 0 .. steps * rounds)
        foreach (w; 0 .. workers)
            if (w >= 2 || s < steps * rounds / 2)
                fibers[w].call();
    foreach (w; 2 .. workers)
        fibers[w].call();
    ulong sum;
    foreach (w; 0 .. workers) {
        sum ^= acc[w];
        if (fibers[w].state != Fiber.State.TERM)
            kept ~= fibers[w];
    }
    return sum;
}

ulong resets(int rounds)
{
    ulong sum;
    int k;
    auto f = new Fiber({ sum += 1; });
    foreach (i; 0 .. 200 * rounds) {
        while (f.state != Fiber.State.TERM)
            f.call();
        k = i;
        f.reset({
            foreach (j; 0 .. 3) {
                sum += k * j;
                Fiber.yield();
            }
        });
    }
    while (f.state != Fiber.State.TERM)
        f.call();
    return sum;
}

void source(Tid next, int count)
{
    foreach (i; 0 .. count)
        send(next, i);
    send(next, -1);
}

void square(Tid next)
{
    for (;;) {
        immutable v = receiveOnly!int();
        send(next, v < 0 ? v : v * v % 10_007);
        if (v < 0)
            return;
    }
}

void sink(Tid owner)
{
    ulong total;
    for (;;) {
        immutable v = receiveOnly!int();
        if (v < 0)
            break;
        total += v;
    }
    send(owner, total);
}

ulong pipeline(int rounds)
{
    ulong total;
    auto fibers = new FiberScheduler;
    scheduler = fibers;
    fibers.start({
        auto last = spawn(&sink, thisTid);
        auto middle = spawn(&square, last);
        spawn(&source, middle, 2000 * rounds);
        total = receiveOnly!ulong();
    });
    scheduler = null;
    return total;
}

ulong churn(int rounds)
{
    ulong sum;
    foreach (i; 0 .. 300 * rounds) {
        immutable n = i;
        auto f = new Fiber({
            sum += n;
            Fiber.yield();
            sum += 1;
        });
        f.call();
        f.call();
    }
    GC.collect();
    return sum;
}

void main(string[] args)
{
    immutable rounds = args.length > 1 ? args[1].to!int : 1;
    writefln("generators: %d", generators(rounds));
    writefln("round robin: %d", roundRobin(rounds));
    writefln("resets: %d", resets(rounds));
    writefln("pipeline: %d", pipeline(rounds));
    writefln("churn: %d", churn(rounds));
    writefln("kept suspended: %d", kept.length);
}
