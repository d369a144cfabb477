// The gate over streamable HTTP in front of the toy server over streamable HTTP, and agate down.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client as AgateClient } from "@agate/client";
import { startAgateServer } from "@agate/client/testing";
import { caseIdIn, connectHttp, connectStdio, executed, gateArgs, recordFile, spawnListening, text, TOY } from "./helpers.mjs";
import { createServer } from "node:net";

describe("the MCP gate over streamable HTTP", () => {
  let agate;
  let admin;
  let toy;
  let gate;
  let client;
  const record = recordFile();
  before(async () => {
    agate = await startAgateServer();
    admin = new AgateClient(agate.target, { deadlineMs: 5000 });
    toy = await spawnListening([TOY, "--http", "127.0.0.1:0", "--record", record]);
    gate = await spawnListening(gateArgs({ agate: agate.target, upstreamUrl: toy.url, listen: "127.0.0.1:0" }));
    client = await connectHttp(gate.url);
  });
  after(async () => {
    await client?.close();
    await gate?.stop();
    await toy?.stop();
    admin?.close();
    await agate?.stop();
  });

  it("passes tools/list through", async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ["grant_role", "lookup_order", "refund"]);
  });

  it("forwards an allowed call", async () => {
    const result = await client.callTool({ name: "lookup_order", arguments: { order_id: "h-1" } });
    assert.equal(text(result), "order h-1: shipped, 400.00 USD");
    assert.deepEqual(executed(record), [{ tool: "lookup_order", arguments: { order_id: "h-1" } }]);
  });

  it("does not forward a blocked refund until it is approved, then forwards the identical call once", async () => {
    const args = { order_id: "h-7", amount: 400 };
    const blocked = await client.callTool({ name: "refund", arguments: args });
    assert.equal(blocked.isError, true);
    assert.match(text(blocked), /awaits approval \(agate BLOCK, case case_\w+, owner finance-approver/);
    assert.equal(executed(record).length, 1);
    await admin.acknowledge(caseIdIn(blocked), "approve", { approver: "finance-approver" });
    const redeemed = await client.callTool({ name: "refund", arguments: args });
    assert.equal(text(redeemed), "refunded 400 on h-7");
    const again = await client.callTool({ name: "refund", arguments: args });
    assert.equal(again.isError, true);
    assert.equal(executed(record).filter((e) => e.tool === "refund").length, 1);
  });

  it("serves each HTTP client its own session", async () => {
    const second = await connectHttp(gate.url);
    try {
      const result = await second.callTool({ name: "lookup_order", arguments: { order_id: "h-2" } });
      assert.equal(text(result), "order h-2: shipped, 400.00 USD");
    } finally {
      await second.close();
    }
  });

  it("refuses a denied call", async () => {
    const result = await client.callTool({ name: "grant_role", arguments: { user: "mallory", role: "admin" } });
    assert.equal(result.isError, true);
    assert.match(text(result), /DENY/);
    assert.ok(!executed(record).some((e) => e.tool === "grant_role"));
  });
});

describe("the MCP gate with agate down", () => {
  let gate;
  const record = recordFile();
  before(async () => {
    const port = await new Promise((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
    gate = await connectStdio({ agate: `127.0.0.1:${port}`, record });
  });
  after(() => gate?.close());

  it("still lists tools (only tools/call is gated)", async () => {
    assert.equal((await gate.client.listTools()).tools.length, 3);
  });

  for (const [name, args] of [
    ["lookup_order", { order_id: "d-1" }],
    ["refund", { order_id: "d-2", amount: 10 }],
  ]) {
    it(`fails closed: ${name} is not forwarded`, async () => {
      const result = await gate.client.callTool({ name, arguments: args });
      assert.equal(result.isError, true);
      assert.match(text(result), new RegExp(`^agate: ${name} was not executed: agate did not answer \\(UNAVAILABLE: .*\\); failing closed\\. Try again later\\.$`));
      assert.equal(result._meta["agate/decision"].failedClosed, true);
      assert.deepEqual(executed(record), []);
    });
  }
});
