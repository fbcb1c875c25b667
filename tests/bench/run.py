"""`make bench`: run every benchmark and print its table (results also land in .lambdad/bench/)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench import (
    bench_async,
    bench_buckets,
    bench_http,
    bench_reload,
    bench_runtime,
    bench_schedules,
    bench_sqs,
    bench_startup,
    bench_streams,
)

if __name__ == "__main__":
    reps = int(os.environ.get("BENCH_REPS", "5"))
    bench_runtime.main(reps)
    bench_startup.main(reps)
    bench_async.main(reps)
    bench_buckets.main(max(1, reps // 2))
    bench_schedules.main(1)
    bench_reload.main(1)
    bench_http.main(max(1, reps // 2))
    bench_sqs.main(1)
    bench_streams.main(1)
