"""The long fault run: 20% of provider calls fail while daemons are killed; the state still converges exactly.

Faults (tests/e2e/chaos.FAULT_KINDS, an equal share each): 429 with Retry-After, 500,
503, latency past the request timeout, connection reset, and a reset after the provider
acted. Prints the faults injected, the provider requests per outside change (retries must
stay bounded) and the convergence time.

    .venv/bin/python -m bench.faults [--seconds 120] [--kills 10] [--fraction 0.2] [--seed 3]
"""

from __future__ import annotations

import argparse

from bench.soak import bench
from tests.e2e.chaos import RunConfig, chaos_run, fault_count, inject_faults, request_count
from worker import eventloop


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120, help="about how long the workload runs")
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs spread over the run")
    parser.add_argument("--fraction", type=float, default=0.2, help="share of provider calls that fail")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=6)
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    async with bench() as b:
        world = b.world(await b.accounts(args.accounts))
        counts: dict[str, int] = {}

        async def clear() -> None:
            counts["faults"] = await fault_count(b.sandbox)
            counts["requests"] = await request_count(b.sandbox)
            await b.sandbox.control.clear_faults()

        world.settle.append(clear)
        await inject_faults(b.sandbox, args.fraction, seed=args.seed)
        gap = args.seconds / max(args.kills, 1)
        cfg = RunConfig(
            seed=args.seed, kills=args.kills, crash_points=(), gap=(gap * 0.5, gap * 1.5), converge_within=120
        )
        report = await chaos_run(cfg, b.backends, world, b.root / "daemons")
        changes = report.changes + report.writes
        print(f"faults: {report.line()}")
        print(
            f"faults: {counts['faults']} of {counts['requests']} provider requests failed "
            f"({counts['faults'] / max(counts['requests'], 1):.0%}); "
            f"{counts['requests'] / max(changes, 1):.2f} provider requests per change "
            f"({report.changes} outside changes + {report.writes} appointment writes); converged exactly"
        )


if __name__ == "__main__":
    eventloop.run(main())
