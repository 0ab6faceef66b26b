#!/usr/bin/env bash
# The docker-compose `job-submitter`: submit the billing job to the JobManager once. `docker compose up` may run
# this container again (a second `up`, a recreated stack with the volume kept): a job of the same name that is
# still alive is left alone instead of starting a second consumer of the same topics with the same
# transactional ids. Arguments after the options go to the job (`meterstream submit ... -- <job args>`).
#
#   submit-billing.sh JOBMANAGER_HOST:PORT PARALLELISM JOB_NAME [job args...]
set -euo pipefail

jobmanager="$1" parallelism="$2" job_name="$3"
shift 3

# Exit status of the check: 0 a job of that name is alive, 1 none is, 2 the JobManager did not answer.
set +e
python - "$jobmanager" "$job_name" <<'PY'
import json
import sys
import urllib.request

address, name = sys.argv[1:]
try:
    with urllib.request.urlopen(f"http://{address}/jobs/overview", timeout=10) as answer:
        jobs = json.load(answer)["jobs"]
except (OSError, ValueError, KeyError) as exc:
    print(f"the JobManager at {address} did not answer: {exc}", file=sys.stderr)
    sys.exit(2)
alive = [j for j in jobs if j["name"] == name and j["state"] not in ("FINISHED", "FAILED", "CANCELED")]
for job in alive:
    print(f"job {name} is already {job['state']}: {job['jid']}; not submitting again")
sys.exit(0 if alive else 1)
PY
status=$?
set -e
case "$status" in
    0) exit 0 ;;
    1) ;;
    *) exit "$status" ;;
esac

exec meterstream submit --jobmanager "$jobmanager" --parallelism "$parallelism" -- --job-name "$job_name" "$@"
