#!/usr/bin/env bash
# crash_test.sh BUILD_DIR [ITERATIONS]
#
# Nothing a client was told is lost on kill -9, and nothing the store did is missing from the
# audit trail. Each iteration starts agate-server on one data dir, drives escalations (every
# request opens a BLOCK case), acknowledgements and redemptions of approved cases at it with the
# agate CLI, kills the server with SIGKILL at a random moment, and restarts it. At the end:
#   - every case id a client received exists, in the state the client was last told (APPROVED
#     after a confirmed ack; OPEN or APPROVED when an ack was sent but its answer was lost to the
#     kill; OPEN otherwise); answered requests sent again are replayed with the same decision;
#   - every redemption answered ALLOW is in the decision log (its request_id, verdict ALLOW, the
#     decision id the client got) and its case is redeemed in the store; every case the store
#     says is redeemed has the ALLOW record of the request that redeemed it and its "redeemed"
#     transition in the log; every approved case has its "approved" transition in the log;
#   - a redeemed case is never redeemed twice: a second redemption (a new request_id) is refused
#     with a reason, during the kills and after the last restart, and the log holds one redeeming
#     ALLOW per case; a redemption sent again with its own request_id is replayed;
#   - the decision log's hash chain verifies.
# Prints the counts; exits 1 on any loss. KEEP=1 keeps the work directory (/tmp/agate-crash-*).
set -euo pipefail

build=$(cd "${1:?usage: crash_test.sh BUILD_DIR [ITERATIONS]}" && pwd)
iterations=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
server=$build/server/agate-server
cli=$build/client/agate
python=/usr/bin/python3
work=$(mktemp -d /tmp/agate-crash-XXXXXX)
data=$work/data
sock=$work/agate.sock
addr=unix:$sock
pid=

cleanup() {
  touch "$work/stop"
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "crash_test: FAIL: $*" >&2
  echo "crash_test: server log (last 20 lines):" >&2
  tail -n 20 "$work/server.log" >&2 || true
  exit 1
}

start_server() {
  "$server" --matrix "$root/deploy/examples/escalation-matrix.yaml" --listen "$addr" \
    --data-dir "$data" --log-level warn 2>>"$work/server.log" &
  pid=$!
  for _ in $(seq 300); do
    if "$cli" stats --server "$addr" >/dev/null 2>&1; then return 0; fi
    kill -0 "$pid" 2>/dev/null || fail "agate-server exited at start"
    sleep 0.05
  done
  fail "agate-server did not answer within 15 s"
}

# requests I: escalations with unique ids and items, until the stop file appears.
requests() {
  local n=0
  while [ ! -e "$work/stop" ]; do
    n=$((n + 1))
    printf '{"request_id":"c%s-%s","tenant_id":"t1","agent_id":"refund-bot","workflow_id":"wf%s","item_id":"item-%s-%s","action":{"type":"refund","amount":400}}\n' \
      "$1" "$n" "$((n % 5))" "$1" "$n"
    sleep 0.004
  done
}

# acks I: approves cases answered in earlier iterations; logs each attempt before sending it
# and each confirmation after the answer.
acks() {
  local id
  for id in $(cat "$work"/open.* 2>/dev/null | shuf -n 200 2>/dev/null || true); do
    [ -e "$work/stop" ] && break
    echo "$id" >>"$work/ack-attempted"
    if "$cli" ack --server "$addr" --case "$id" --decision approve --approver finance-approver \
      --timeout 1s >/dev/null 2>&1; then
      echo "$id" >>"$work/ack-confirmed"
    fi
  done
}

# plan_redemptions TAG: writes the redemption requests of iteration TAG (or of the last restart,
# TAG=final) to plan.TAG, one a line. A redemption is the request that opened the case (its line
# in in.I) with request_id rd-CASE and approval.case_id CASE: cases whose ack was confirmed and
# whose redemption was not (sent again with the same request_id: a retry) and, after the last
# restart, every confirmed one again (a replay). A second redemption takes request_id
# rd2-CASE-TAG: a few of the cases redeemed so far; after the last restart, those the store says
# are redeemed.
plan_redemptions() {
  "$python" - "$work" "$1" >"$work/plan.$1" <<'EOF'
import glob, json, random, sys
work, tag = sys.argv[1], sys.argv[2]
opening = {}
for path in glob.glob(f"{work}/opening.*"):
    for line in open(path):
        cid, request = line.rstrip("\n").split("\t", 1)
        opening[cid] = request
def redemption(cid, request_id):
    r = json.loads(opening[cid])
    r["request_id"] = request_id
    r["approval"] = {"case_id": cid}
    return json.dumps(r, separators=(",", ":"))
acked = {l.strip() for l in open(f"{work}/ack-confirmed")}
redeemed = sorted({a["case_id"] for a in map(json.loads, open(f"{work}/redeem-answers.jsonl"))
                   if not a["second"] and a["verdict"] == "VERDICT_ALLOW"})
if tag == "final":
    stored = [c["id"] for c in map(json.loads, open(f"{work}/cases.jsonl")) if c.get("redeemed")]
    plan = [redemption(c, f"rd-{c}") for c in random.sample(redeemed, min(len(redeemed), 20))]
    plan += [redemption(c, f"rd2-{c}-final") for c in random.sample(stored, min(len(stored), 20))]
else:
    todo = sorted(acked - set(redeemed))
    plan = [redemption(c, f"rd-{c}") for c in random.sample(todo, min(len(todo), 60))]
    plan += [redemption(c, f"rd2-{c}-{tag}") for c in random.sample(redeemed, min(len(redeemed), 5))]
    random.shuffle(plan)
print("\n".join(plan))
EOF
  sed -i '/^$/d' "$work/plan.$1"
}

# redeem I: when the go file appears (shortly before the kill), sends plan.I as fast as the
# server answers, so that the kill can land between a redemption's commit and its answer; logs
# each request to redeem-in.I before sending it (answers pair with it by line in redeem-out.I).
redeem() {
  local line
  while [ ! -e "$work/go" ] && [ ! -e "$work/stop" ]; do sleep 0.01; done
  while IFS= read -r line; do
    [ -e "$work/stop" ] && break
    echo "$line" >>"$work/redeem-in.$1"
    echo "$line"
  done <"$work/plan.$1"
}

# answers I: pairs redeem-in.I with redeem-out.I and appends the confirmed answers (not failed
# closed) to redeem-answers.jsonl; prints how many.
answers() {
  "$python" - "$work" "$1" <<'EOF'
import json, os, sys
work, tag = sys.argv[1], sys.argv[2]
sent = f"{work}/redeem-in.{tag}"
if not os.path.exists(sent):
    print(0)
    sys.exit(0)
n = 0
with open(f"{work}/redeem-answers.jsonl", "a") as out:
    for q, a in zip(open(sent), open(f"{work}/redeem-out.{tag}")):
        q, a = json.loads(q), json.loads(a)
        if a.get("failed_closed"):
            continue
        n += 1
        out.write(json.dumps({
            "tag": tag, "request_id": q["request_id"], "case_id": q["approval"]["case_id"],
            "second": q["request_id"].startswith("rd2-"), "error": a.get("error"),
            "verdict": a.get("verdict"), "decision_id": a.get("decision_id"),
            "answer_case_id": a.get("case_id"), "reason": a.get("reason", ""),
            "replayed": a.get("replayed", False)}) + "\n")
print(n)
EOF
}

touch "$work/ack-attempted" "$work/ack-confirmed" "$work/redeem-answers.jsonl"
for i in $(seq "$iterations"); do
  rm -f "$work/stop" "$work/go"
  plan_redemptions "$i"
  start_server
  (requests "$i" | tee "$work/in.$i" | "$cli" eval --server "$addr" --timeout 1s \
    >"$work/out.$i" 2>/dev/null) &
  load=$!
  acks &
  ackers=$!
  (redeem "$i" | "$cli" eval --server "$addr" --timeout 1s >"$work/redeem-out.$i" 2>/dev/null) &
  redeemers=$!
  # Kill at a random moment between 0.2 s and 1.25 s after the load's first answer (on a busy
  # machine the clients can take longer than that to start), within 50 ms of the redemptions'
  # first answer.
  for _ in $(seq 100); do [ -s "$work/out.$i" ] && break; sleep 0.05; done
  sleep "0.$((RANDOM % 10 + 2))"
  touch "$work/go"
  # Once the redeemer has an answer (a slow server, e.g. under ASan, can take longer than the
  # random delay to answer the first one), the kill lands within 50 ms, among its redemptions.
  if [ -s "$work/plan.$i" ]; then
    for _ in $(seq 60); do [ -s "$work/redeem-out.$i" ] && break; sleep 0.05; done
  fi
  sleep "0.0$((RANDOM % 5))"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  touch "$work/stop"
  wait "$load" "$ackers" "$redeemers" 2>/dev/null || true
  # Case ids this iteration's client was told about (answers that did not fail closed), and the
  # request that opened each.
  "$python" - "$work" "$i" <<'EOF'
import json, sys
work, i = sys.argv[1], sys.argv[2]
with open(f"{work}/open.{i}", "w") as ids, open(f"{work}/opening.{i}", "w") as opening:
    for request, line in zip(open(f"{work}/in.{i}"), open(f"{work}/out.{i}")):
        r = json.loads(line)
        if r.get("case_id") and not r.get("failed_closed"):
            ids.write(r["case_id"] + "\n")
            opening.write(f"{r['case_id']}\t{request.strip()}\n")
EOF
  echo "crash_test: iteration $i: killed after $(wc -l <"$work/out.$i") answers, $(wc -l <"$work/open.$i") cases received, $(answers "$i") redemptions answered"
done

start_server
"$cli" cases --server "$addr" --all >"$work/cases.jsonl"
# Replays: every answered request of the first iterations, sent again, must get its decision.
"$python" - "$work" "$iterations" >"$work/replay-in.jsonl" <<'EOF'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
with open(f"{work}/replay-want.txt", "w") as want:
    for i in range(1, min(n, 5) + 1):
        for request, line in zip(open(f"{work}/in.{i}"), open(f"{work}/out.{i}")):
            r = json.loads(line)
            if r.get("case_id") and not r.get("failed_closed"):
                print(request.strip())
                want.write(f"{r['decision_id']} {r['case_id']}\n")
EOF
"$cli" eval --server "$addr" <"$work/replay-in.jsonl" >"$work/replay-out.jsonl"
# Redemptions after the last restart: confirmed ones again (replays), second ones of redeemed cases.
plan_redemptions final
cp "$work/plan.final" "$work/redeem-in.final"
"$cli" eval --server "$addr" <"$work/plan.final" >"$work/redeem-out.final"
[ "$(answers final)" = "$(wc -l <"$work/plan.final")" ] || fail "a redemption after the last restart was not answered"
"$cli" verify-log "$data/decisions" >"$work/verify.txt" || fail "decision log: $(cat "$work/verify.txt")"

"$python" - "$work" "$iterations" "$data/decisions" <<'EOF' || fail "see above"
import collections, glob, json, re, sys
work, n, log_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cases = {}
for line in open(f"{work}/cases.jsonl"):
    c = json.loads(line)
    cases[c["id"]] = c
states = {cid: c["state"] for cid, c in cases.items()}
received = [l.strip() for i in range(1, n + 1) for l in open(f"{work}/open.{i}") if l.strip()]
attempted = {l.strip() for l in open(f"{work}/ack-attempted")}
confirmed = {l.strip() for l in open(f"{work}/ack-confirmed")}
lost, wrong = [], []
for cid in received:
    state = states.get(cid)
    if state is None:
        lost.append(cid)
    elif cid in confirmed:
        if state != "CASE_STATE_APPROVED":
            wrong.append((cid, state, "APPROVED"))
    elif cid in attempted:
        if state not in ("CASE_STATE_OPEN", "CASE_STATE_APPROVED"):
            wrong.append((cid, state, "OPEN or APPROVED"))
    elif state != "CASE_STATE_OPEN":
        wrong.append((cid, state, "OPEN"))
# Replays: the decision first answered, marked replayed.
want = [l.split() for l in open(f"{work}/replay-want.txt")]
replays = [json.loads(l) for l in open(f"{work}/replay-out.jsonl")]
bad_replays = [r for r, (decision, case) in zip(replays, want)
               if not r.get("replayed") or r.get("decision_id") != decision or
               r.get("case_id") != case]
if len(replays) != len(want):
    bad_replays.append({"error": f"{len(replays)} replay answers for {len(want)} requests"})
print(f"crash_test: {n} kill -9 restarts; {len(received)} case ids received, "
      f"{len(states)} cases in the store; {len(confirmed)} acks confirmed, "
      f"{len(attempted) - len(confirmed)} unconfirmed; {len(replays)} replays")
for cid in lost[:10]:
    print(f"crash_test: LOST case {cid}")
for cid, state, want in wrong[:10]:
    print(f"crash_test: case {cid} is {state}, expected {want}")
for r in bad_replays[:10]:
    print(f"crash_test: replay not the first decision: {r}")

# The decision log: decisions by request_id, case transitions by (case, transition).
decisions, transitions = collections.defaultdict(list), collections.defaultdict(list)
for path in sorted(glob.glob(f"{log_dir}/decisions-*.jsonl")):
    for line in open(path):
        r = json.loads(line)
        if r.get("event") == "case":
            transitions[(r["case_id"], r["transition"])].append(r)
        elif "verdict" in r:
            decisions[r["request_id"]].append(r)
def logged_allow(request_id, decision_id, cid):
    return any(r["verdict"] == "ALLOW" and r["decision_id"] == decision_id and
               cid in r["case_ids"] for r in decisions.get(request_id, []))
problems = []
answers = [json.loads(l) for l in open(f"{work}/redeem-answers.jsonl")]
sent = {json.loads(l)["request_id"] for f in glob.glob(f"{work}/redeem-in.*") for l in open(f)}
first = [a for a in answers if not a["second"]]
second = [a for a in answers if a["second"]]
# (a) Every redemption answered ALLOW is in the log, and its case is redeemed in the store.
allowed = {}
for a in first:
    cid = a["case_id"]
    if a["error"] or a["verdict"] != "VERDICT_ALLOW" or a["answer_case_id"] != cid or \
            "redeemed once" not in a["reason"]:
        problems.append(f"redemption {a['request_id']} of approved case {cid} answered {a}")
        continue
    if a["tag"] == "final":
        if not a["replayed"] or a["decision_id"] != allowed.get(cid):
            problems.append(f"redemption {a['request_id']} sent again after the last restart "
                            f"was not replayed with decision {allowed.get(cid)}: {a}")
        continue
    if allowed.setdefault(cid, a["decision_id"]) != a["decision_id"]:
        problems.append(f"redemption {a['request_id']} answered ALLOW twice with different "
                        f"decisions: {allowed[cid]} and {a['decision_id']}")
    if not logged_allow(a["request_id"], a["decision_id"], cid):
        problems.append(f"redemption {a['request_id']} was answered ALLOW (decision "
                        f"{a['decision_id']}) but its ALLOW record is not in the decision log")
    if not cases.get(cid, {}).get("redeemed"):
        problems.append(f"redemption {a['request_id']} was answered ALLOW but case {cid} is not "
                        f"redeemed in the store")
in_log = len({a["request_id"] for a in first if a["tag"] != "final" and
              a["verdict"] == "VERDICT_ALLOW" and
              logged_allow(a["request_id"], a["decision_id"], a["case_id"])})
# (b) Every case the store says is redeemed has, in the log, its "redeemed" transition and the
# ALLOW record of the request that redeemed it (named in the transition); (d) once.
redeemed = [c for c in cases.values() if c.get("redeemed")]
redeemed_logged = matched = 0
for c in redeemed:
    cid = c["id"]
    by = [h["comment"] for h in c["history"] if h["event"] == "redeemed"]
    m = re.fullmatch(r"request (\S+) \(decision (\S+)\)", by[0]) if len(by) == 1 else None
    if m is None:
        problems.append(f"case {cid} is redeemed, with redeemed transitions {by}")
        continue
    if m.group(1) != f"rd-{cid}":
        problems.append(f"case {cid} was redeemed by request {m.group(1)}, not rd-{cid}")
    ok = True
    logged = [r["comment"] for r in transitions.get((cid, "redeemed"), [])]
    if logged.count(by[0]) != 1:
        problems.append(f"case {cid} is redeemed in the store ({by[0]}); the decision log has "
                        f"redeemed transitions {logged}")
        ok = False
    matched += logged.count(by[0]) == 1
    if not logged_allow(m.group(1), m.group(2), cid):
        problems.append(f"case {cid} is redeemed in the store by request {m.group(1)} (decision "
                        f"{m.group(2)}), whose ALLOW record is not in the decision log")
        ok = False
    redeemed_logged += ok
# A redeemed transition is written before the store commits: a kill in between leaves one the
# store never had (the redemption did not happen; a retry makes it again).
uncommitted = sum(len(v) for (_, t), v in transitions.items() if t == "redeemed") - matched
# Likewise a redemption's ALLOW record is written before the store commits it: a kill in between
# and the retry (the same request_id) leave two records of one redemption. Two requests must never
# have redeemed one case.
spent = collections.defaultdict(set)
for rs in decisions.values():
    for r in rs:
        if r["verdict"] == "ALLOW" and "redeemed once" in r.get("reason", ""):
            for cid in r["case_ids"]:
                spent[cid].add(r["request_id"])
for cid, requests in spent.items():
    if len(requests) > 1:
        problems.append(f"case {cid} was redeemed by requests {sorted(requests)} in the log")
# (d) Second redemptions (new request_ids) of redeemed cases are refused, with a reason.
for a in second:
    if a["error"] or a["verdict"] in (None, "VERDICT_ALLOW") or \
            "already redeemed" not in a["reason"]:
        problems.append(f"second redemption {a['request_id']} of redeemed case {a['case_id']} "
                        f"answered {a}")
# (c) Every approved case (every confirmed ack among them) has its "approved" transition in the
# log, by the approver.
def logged_ack(cid):
    return any(r["state"] == "APPROVED" and r["principal"]["subject"] == "finance-approver"
               for r in transitions.get((cid, "approved"), []))
approved = [cid for cid, s in states.items() if s == "CASE_STATE_APPROVED"]
for cid in sorted(set(approved) | confirmed):
    if not logged_ack(cid):
        problems.append(f"case {cid} is APPROVED in the store"
                        f"{' (ack confirmed)' if cid in confirmed else ''} but its approved "
                        f"transition is not in the decision log")
acks_logged = sum(1 for cid in confirmed if logged_ack(cid))
tried = {r for r in sent if r.startswith("rd-")}
answered = {a["request_id"] for a in first if a["tag"] != "final" and a["verdict"] == "VERDICT_ALLOW"}
cut_off = {r for r in tried - answered if cases.get(r[len("rd-"):], {}).get("redeemed")}
refused = sum(1 for a in second if a["verdict"] not in (None, "VERDICT_ALLOW"))
print(f"crash_test: redemptions: {len(tried)} attempted, {len(answered)} confirmed ALLOW, "
      f"{in_log} of them in the log; {len(redeemed)} cases redeemed in the store "
      f"({len(cut_off)} whose answer the kill cut off), {redeemed_logged} with their ALLOW in "
      f"the log; {refused} of {len(second)} second redemptions refused; {acks_logged} of "
      f"{len(confirmed)} confirmed acks in the chain")
if uncommitted:
    print(f"crash_test: {uncommitted} redeemed transitions in the log of redemptions the store "
          f"never committed (killed in between; retried)")
for p in problems[:20]:
    print(f"crash_test: {p}")
if not received:
    print("crash_test: no case was received: the load did not run")
    sys.exit(1)
if not allowed or not second:
    print("crash_test: no redemption (or no second one) was confirmed: the redeemer did not run")
    sys.exit(1)
sys.exit(1 if lost or wrong or bad_replays or problems else 0)
EOF
echo "crash_test: $(cat "$work/verify.txt" | head -1)"
echo "crash_test: PASS"
