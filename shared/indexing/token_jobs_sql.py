"""The SQL that gives newly created tokens their pending jobs, shared by the statements that
create tokens (contract enumeration, SFT mints, chain mints)."""

from __future__ import annotations

# Reads a `new_tokens` CTE (an `INSERT INTO tokens ... ON CONFLICT DO NOTHING RETURNING id`,
# so only tokens that did not exist) and returns the new jobs' ids. A token that existed keeps
# its job (docs/reference-differences.md#re-mints).
PENDING_JOBS_FOR_NEW_TOKENS = """
    INSERT INTO jobs (token_id, status, updated_at)
    SELECT id, 'pending', NOW() FROM new_tokens
    ON CONFLICT (token_id) WHERE smart_contract_id IS NULL DO NOTHING
    RETURNING id
"""
