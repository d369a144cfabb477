// The fail-closed table: every gRPC status agate could answer, and what evaluate makes of it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { AgateError, Client, STATUS_NAMES, STATUS_OUTCOMES, create, pb, statusOutcome } from "../dist/index.js";
import { REPO_ROOT } from "../dist/testing.js";
import { allowRequest, startFake } from "./helpers.mjs";

const shared = JSON.parse(readFileSync(`${REPO_ROOT}/sdk/status_outcomes.json`, "utf8"));

describe("the status table", () => {
  it("is sdk/status_outcomes.json, the table every SDK shares", () => {
    assert.deepEqual({ ...STATUS_OUTCOMES }, shared);
    assert.equal(Object.keys(shared).length, 17);
  });

  it("names the codes as grpc-js numbers them", () => {
    for (const [code, name] of STATUS_NAMES.entries()) assert.equal(grpc.status[name], code, name);
  });
});

describe("evaluate against a server answering each status", () => {
  let fake;
  // The fake answers the status named in the request's tenant_id (OK answers ALLOW).
  before(async () => {
    fake = await startFake({
      evaluate: (call, callback) => {
        const name = call.request.tenantId;
        if (name === "OK") return callback(null, create(pb.EvaluateResponseSchema, { verdict: pb.Verdict.ALLOW }));
        callback({ code: grpc.status[name], details: `faked ${name}` });
      },
    });
  });
  after(() => fake.stop());

  for (const mode of ["closed", "open"]) {
    for (const name of STATUS_NAMES) {
      const outcome = shared[name];
      it(`${name} is ${outcome === "no_answer" ? `no answer (fail ${mode})` : `an ${outcome}`} with failureMode ${mode}`, async () => {
        const client = new Client(fake.target, { deadlineMs: 5000, failureMode: mode });
        try {
          assert.equal(statusOutcome(grpc.status[name]), outcome);
          const request = { ...allowRequest(`r-${mode}-${name}`), tenant_id: name };
          if (outcome === "error") {
            await assert.rejects(client.evaluate(request), (e) => {
              assert.ok(e instanceof AgateError);
              assert.equal(e.code, grpc.status[name]);
              assert.equal(e.codeName, name);
              assert.equal(e.details, `faked ${name}`);
              assert.match(e.message, new RegExp(`^agate refused evaluate \\(${name}: faked ${name}\\): \\w`));
              return true;
            });
            assert.deepEqual(client.counters(), { ok: 0, escalated: 0, error: 1, failedClosed: 0, failedOpen: 0 });
            return;
          }
          const d = await client.evaluate(request);
          if (outcome === "answer") {
            assert.equal(d.verdict, "ALLOW");
            assert.equal(d.failedClosed || d.failedOpen, false);
            assert.deepEqual(client.counters(), { ok: 1, escalated: 0, error: 0, failedClosed: 0, failedOpen: 0 });
            return;
          }
          const closed = mode === "closed";
          assert.equal(d.verdict, closed ? "HOLD" : "ALLOW");
          assert.equal(d.failedClosed, closed);
          assert.equal(d.failedOpen, !closed);
          assert.equal(d.response.failedClosed, closed);
          assert.equal(d.caseId, "");
          assert.equal(d.reason, `agate did not answer (${name}: faked ${name}); failing ${mode}`);
          assert.deepEqual(client.counters(), {
            ok: 0,
            escalated: 0,
            error: 0,
            failedClosed: closed ? 1 : 0,
            failedOpen: closed ? 0 : 1,
          });
        } finally {
          client.close();
        }
      });
    }
  }
});

describe("a server slower than the deadline", () => {
  let fake;
  before(async () => {
    fake = await startFake({ evaluate: () => {} }); // never answers
  });
  after(() => fake.forceStop());

  it("fails closed with DEADLINE_EXCEEDED", async () => {
    const client = new Client(fake.target, { deadlineMs: 300 });
    const d = await client.evaluate(allowRequest("slow-1"));
    client.close();
    assert.equal(d.verdict, "HOLD");
    assert.equal(d.failedClosed, true);
    assert.match(d.reason, /^agate did not answer \(DEADLINE_EXCEEDED: .*\); failing closed$/);
  });

  it("fails open with DEADLINE_EXCEEDED when configured to", async () => {
    const client = new Client(fake.target, { deadlineMs: 300, failureMode: "open" });
    const d = await client.evaluate(allowRequest("slow-2"));
    client.close();
    assert.equal(d.verdict, "ALLOW");
    assert.equal(d.failedOpen, true);
    assert.equal(d.failedClosed, false);
    assert.match(d.reason, /DEADLINE_EXCEEDED.*failing open$/);
  });
});
