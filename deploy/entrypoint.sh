#!/bin/sh
# The image's entry point: runs one process of the Procfile by name, exactly as the Procfile
# says (api, stream, worker, beat, flower, release), so that the Procfile stays the one
# definition of every process for `make run`, docker compose and Kubernetes alike. Anything
# else runs as a command:
#   docker run IMAGE worker
#   docker run IMAGE python -m shared.progress
set -eu

procfile="${PROCFILE:-$(dirname "$0")/../Procfile}"
if [ "$#" -eq 0 ]; then
  set -- api
fi

if [ "$#" -eq 1 ]; then
  command="$(awk -v name="$1" 'index($0, name ":") == 1 { print substr($0, length(name) + 2); exit }' "$procfile")"
  if [ -n "$command" ]; then
    # `exec` inside too: the process replaces the shell and receives the container's signals.
    exec sh -c "exec $command"
  fi
fi
exec "$@"
