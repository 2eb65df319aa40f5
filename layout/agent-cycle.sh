#!/usr/bin/env bash
# layout/agent-cycle.sh URL CA TOKEN: one agent's enroll, checkin (gzip body, POLICY_CHANGE
# expected) and ack against a running fleet-edge, with curl; fails on any other answer. The
# request shapes are cross/smoke.sh's. Used by layout/profile.sh.
set -euo pipefail
url=$1 ca=$2 token=$3
tmp=$(mktemp -d /tmp/agent-cycle.XXXX)
trap 'rm -rf "$tmp"' EXIT
post() {   # post URL AUTH FILE [gzip]: prints the body, fails unless 200
    local extra=()
    [ "${4:-}" = gzip ] && extra=(-H "Content-Encoding: gzip")
    curl -sS --fail --max-time 120 --compressed --cacert "$ca" -X POST -H "Authorization: ApiKey $2" \
        -H "User-Agent: Elastic Agent v9.2.1" -H "Elastic-Api-Version: 2023-06-01" \
        -H "Content-Type: application/json" -H "kbn-xsrf: 1" "${extra[@]}" --data-binary @"$3" "$1"
}
json_get() {   # json_get DOTTED.PATH < JSON
    python3 -c 'import json, sys
v = json.load(sys.stdin)
for p in sys.argv[1].split("."):
    v = v[int(p)] if isinstance(v, list) else v[p]
print(v)' "$1"
}
printf '%s' '{"type":"PERMANENT","id":"","replace_token":"","metadata":{"local":{"elastic":{"agent":{"id":"","version":"9.2.1"}},"host":{"hostname":"layout"}},"user_provided":{},"tags":["layout"]}}' >"$tmp/enroll.json"
reply=$(post "$url/api/fleet/agents/enroll?" "$token" "$tmp/enroll.json")
id=$(json_get item.id <<<"$reply")
key=$(json_get item.access_api_key <<<"$reply")
printf '%s' '{"status":"online","message":"layout","components":[],"upgrade":{}}' | gzip -c >"$tmp/checkin.gz"
reply=$(post "$url/api/fleet/agents/$id/checkin?" "$key" "$tmp/checkin.gz" gzip)
[ "$(json_get actions.0.type <<<"$reply")" = POLICY_CHANGE ]
action=$(json_get actions.0.id <<<"$reply")
printf '{"events":[{"type":"ACTION_RESULT","subtype":"ACKNOWLEDGED","agent_id":"%s","action_id":"%s","message":"ok","timestamp":"2026-01-01T00:00:00Z"}]}' \
    "$id" "$action" >"$tmp/ack.json"
post "$url/api/fleet/agents/$id/acks?" "$key" "$tmp/ack.json" >/dev/null
echo "agent $id: enrolled, checked in ($action), acked"
