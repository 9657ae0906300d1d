"""How long the oldest job waiting for a worker has waited, per broker queue
(`token_metadata_oldest_due_job_age_seconds{queue}`; docs/freshness.md#oldest-due-job).

A job waits from when it became due: a pending job once its `retry_after` has passed (or
since it was pended, when it has none), a queued job that no worker holds since it was
queued (its `retry_after` when it had one, its lease's end when that ran out). Contract jobs
go to `contracts`, token jobs to `tokens` until their token was stored once and to `refresh`
after (as `transitions.mark_queued` routes them), image jobs to `images`.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from shared.queues import CONTRACTS_QUEUE, IMAGES_QUEUE, REFRESH_QUEUE, TOKENS_QUEUE

DUE_JOB_QUEUES = (CONTRACTS_QUEUE, TOKENS_QUEUE, REFRESH_QUEUE, IMAGES_QUEUE)

# Each branch walks an index on the status (jobs_status_all_index; image jobs are few): the
# cost grows with the jobs waiting, not with the table (docs/freshness.md#cost).
_WAITING_SINCE = """
    SELECT {columns}COALESCE(retry_after, updated_at, created_at) AS since
      FROM {table} WHERE status = 'pending' AND (retry_after IS NULL OR retry_after <= NOW())
    UNION ALL
    SELECT {columns}COALESCE(locked_until, retry_after, updated_at, created_at)
      FROM {table} WHERE status = 'queued' AND (locked_until IS NULL OR locked_until < NOW())
"""
_OLDEST_DUE_AGES = text(
    f"""
    WITH waiting AS ({_WAITING_SINCE.format(columns="token_id, ", table="jobs")}),
    image_waiting AS ({_WAITING_SINCE.format(columns="", table="image_jobs")})
    SELECT CASE WHEN w.token_id IS NULL THEN '{CONTRACTS_QUEUE}'
                WHEN t.updated_at IS NULL THEN '{TOKENS_QUEUE}'
                ELSE '{REFRESH_QUEUE}' END AS queue,
           EXTRACT(EPOCH FROM NOW() - MIN(w.since)) AS age_s
      FROM waiting w LEFT JOIN tokens t ON t.id = w.token_id
     GROUP BY 1
    UNION ALL
    SELECT '{IMAGES_QUEUE}', EXTRACT(EPOCH FROM NOW() - MIN(since)) FROM image_waiting
    """  # noqa: S608 - composed of constant SQL, nothing is bound
)


def oldest_due_job_ages(conn: Connection) -> dict[str, float]:
    """Seconds the oldest waiting job of each queue has waited; 0 for a queue with none."""
    ages = dict.fromkeys(DUE_JOB_QUEUES, 0.0)
    for queue, age_s in conn.execute(_OLDEST_DUE_AGES):
        if age_s is not None:
            ages[queue] = max(0.0, float(age_s))
    return ages
