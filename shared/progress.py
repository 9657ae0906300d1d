"""`python -m shared.progress [--watch] [--contract ID]`: how far the backfill is."""

from __future__ import annotations

import argparse
import sys
import time

from shared.config import load_settings
from shared.db import make_engine, make_session_factory, session_scope
from shared.models import JobStatus
from shared.reads.progress import Progress, index_progress

STATUSES = [status.value for status in JobStatus]
BAR_WIDTH = 40


def render(progress: Progress) -> str:
    lines = [f"{'kind':<8}" + "".join(f"{s:>10}" for s in STATUSES) + f"{'total':>10}"]
    for kind in sorted(progress.counts):
        counts = progress.counts[kind]
        cells = "".join(f"{counts.get(s, 0):>10}" for s in STATUSES)
        lines.append(f"{kind:<8}{cells}{sum(counts.values()):>10}")
    total, finished = progress.total(), progress.finished()
    share = finished / total if total else 1.0
    filled = round(share * BAR_WIDTH)
    lines.append("")
    lines.append(
        f"tokens [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {share:6.1%}  {finished}/{total}"
    )
    left = progress.seconds_left
    eta = "unknown (no recent progress)" if left is None else _duration(left)
    lines.append(
        f"{progress.tokens_per_second:.1f} tokens/s over the last "
        f"{progress.window_s:.0f}s, time left: {eta}"
    )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.progress", description=__doc__)
    parser.add_argument("--watch", action="store_true", help="refresh until interrupted")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    parser.add_argument("--contract", help="only this contract principal")
    args = parser.parse_args(argv)
    settings = load_settings()
    engine = make_engine(
        settings.database_url,
        pool_size=1,
        application_name="tm-progress",
        transaction_pooled=settings.transaction_pooled,
    )
    sessions = make_session_factory(engine)
    try:
        while True:
            with session_scope(sessions) as session:
                text = render(index_progress(session, args.contract))
            if args.watch:
                sys.stdout.write("\x1b[2J\x1b[H")  # clear the terminal, cursor home
            print(text, flush=True)
            if not args.watch:
                return 0
            time.sleep(args.interval)  # the refresh period of a display, not synchronisation
    except KeyboardInterrupt:
        return 0
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
