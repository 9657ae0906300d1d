"""The SQL that gives newly created tokens their pending jobs, shared by the statements that
create tokens (contract enumeration, SFT mints, chain mints), and what those statements
return for each new token: its job and what its `token_added` entry needs
(docs/change-feed.md#kinds)."""

from __future__ import annotations

# Reads a `new_tokens` CTE (an `INSERT INTO tokens ... ON CONFLICT DO NOTHING RETURNING
# INSERTED_COLUMNS`, so only tokens that did not exist) and returns the new jobs' ids and
# tokens. A token that existed keeps its job (docs/reference-differences.md#re-mints).
# Binds `:trigger` and `:caused_at`: what made the jobs due (docs/fetch-history.md#triggers).
PENDING_JOBS_FOR_NEW_TOKENS = """
    INSERT INTO jobs (token_id, status, updated_at, trigger, caused_at)
    SELECT id, 'pending', NOW(), CAST(:trigger AS text), CAST(:caused_at AS timestamptz)
      FROM new_tokens
    ON CONFLICT (token_id) WHERE smart_contract_id IS NULL DO NOTHING
    RETURNING id, token_id
"""
INSERTED_COLUMNS = "id, smart_contract_id, token_number, block_height, index_block_hash"

# The final SELECT over `new_tokens` and `new_jobs` (the fragment above): each new token with
# its job, in the order the tokens were inserted.
NEW_TOKENS_WITH_JOBS = """
    SELECT j.id AS job_id, t.smart_contract_id, t.token_number, t.block_height,
           t.index_block_hash
      FROM new_tokens t LEFT JOIN new_jobs j ON j.token_id = t.id
     ORDER BY t.id
"""
