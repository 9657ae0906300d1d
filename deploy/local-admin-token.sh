# Sourced by deploy/run-local.sh (`make run`). The admin routes and the dashboard need a token:
# without one configured, use the one kept in $run_dir/admin-token (.run/admin-token unless
# RUN_DIR says otherwise; made on the first run, mode 0600), so restarts keep the same.
# Exports ADMIN_API_TOKEN; sets admin_token_line, what the banner prints about it.
if [ -z "${ADMIN_API_TOKEN:-}" ]; then
  ADMIN_API_TOKEN="$(python -m shared.manage local-admin-token "${run_dir:-.run}/admin-token")"
  admin_token_line="${ADMIN_API_TOKEN}  (for local use, kept in ${run_dir:-.run}/admin-token)"
else
  admin_token_line="the ADMIN_API_TOKEN you configured"
fi
export ADMIN_API_TOKEN
