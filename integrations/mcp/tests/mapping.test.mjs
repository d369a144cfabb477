// The mapping file: validation with file:line:col, and how arguments become an EvaluateRequest.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client } from "@agate/client";
import { startAgateServer } from "@agate/client/testing";
import { MappingError, ToolGate, canonicalJson, loadMapping, parseMapping, ruleFor, toEvaluateRequest } from "../dist/index.js";
import { MAPPING } from "./helpers.mjs";

describe("parseMapping", () => {
  it("loads the toy desk's mapping", () => {
    const m = loadMapping(MAPPING);
    assert.equal(m.tenant, "acme");
    assert.equal(m.unmapped, "deny");
    assert.deepEqual([...m.tools.keys()], ["refund", "lookup_order", "grant_role"]);
    const refund = m.tools.get("refund");
    assert.equal(refund.amountArg, "amount");
    assert.equal(refund.irreversible, true);
    assert.deepEqual(refund.attributes, { reason: "reason" });
  });

  const errors = [
    {
      name: "an unknown key, at the key",
      text: "tenant: acme\ntools:\n  refund:\n    amount_argument: amount\n",
      want: "m.yaml:4:5: tools.refund.amount_argument: unknown key; known keys: evaluate, action,",
    },
    {
      name: "a wrong type, at the value",
      text: "tenant: acme\ntools:\n  refund:\n    irreversible: yes please\n",
      want: "m.yaml:4:19: tools.refund.irreversible: must be true or false",
    },
    {
      name: "a tool without a tenant",
      text: "unmapped: allow\ntools:\n  refund:\n    amount_arg: amount\n",
      want: "m.yaml:3:3: tools.refund: no tenant: set tenant or tenant_arg here, or tenant at the top",
    },
    {
      name: "an unknown unmapped policy",
      text: "tenant: acme\nunmapped: maybe\n",
      want: 'm.yaml:2:11: unmapped: must be evaluate, allow or deny, got "maybe"',
    },
    {
      name: "evaluating unmapped tools without a tenant",
      text: "tools: {}\n",
      want: "m.yaml:1:1: unmapped: evaluate needs a top-level tenant for the tools the mapping does not list",
    },
    { name: "a YAML syntax error", text: "tenant: [acme\n", want: "m.yaml:1:1: Flow sequence in block collection must be sufficiently indented and end with a ]" },
    { name: "a list of attributes with a non-string", text: "tenant: a\ntools:\n  t:\n    attributes: [x, 3]\n", want: "m.yaml:4:21: tools.t.attributes.1: must be a non-empty string" },
  ];
  for (const { name, text, want } of errors) {
    it(`rejects ${name}`, () => {
      assert.throws(() => parseMapping(text, "m.yaml"), (e) => {
        assert.ok(e instanceof MappingError);
        assert.ok(e.message.startsWith(want), `${e.message}\n  does not start with\n${want}`);
        return true;
      });
    });
  }

  it("reads JSON too", () => {
    const m = parseMapping('{"tenant": "acme", "tools": {"pay": {"amount_arg": "sum", "attributes": {"why": "note.text"}}}}');
    assert.deepEqual(m.tools.get("pay").attributes, { why: "note.text" });
  });
});

describe("toEvaluateRequest", () => {
  const mapping = parseMapping(`
tenant: acme
workflow: support
tools:
  refund:
    amount_arg: amount
    currency: USD
    target_arg: customer.id
    item_arg: order_id
    tenant_arg: tenant
    target_tenant_arg: account_tenant
    irreversible: true
    customer_facing: true
    requested_scopes: [billing:write]
    attributes: {why: reason, lines: items}
  note: {}
`);
  const build = (tool, args) => toEvaluateRequest(mapping, tool, ruleFor(mapping, tool), args, canonicalJson(args));

  it("maps every named argument", () => {
    const args = { amount: "400.5", customer: { id: "c-9" }, order_id: 7, tenant: "globex", account_tenant: "acme", reason: "late", items: [1, 2] };
    const r = build("refund", args);
    assert.deepEqual(r.action, {
      type: "refund",
      amount: 400.5,
      currency: "USD",
      target: "c-9",
      targetTenantId: "acme",
      irreversible: true,
      customerFacing: true,
      requestedScopes: ["billing:write"],
    });
    assert.equal(r.tenantId, "globex");
    assert.equal(r.itemId, "7");
    assert.equal(r.workflowId, "support");
    assert.deepEqual(r.attributes, { why: "late", lines: [1, 2] });
    assert.deepEqual(JSON.parse(r.evidence.proposed_action), { tool: "refund", arguments: args });
  });

  it("falls back to the fixed tenant and derives an item per distinct call", () => {
    const a = build("note", { text: "hi", to: "x" });
    const b = build("note", { to: "x", text: "hi" });
    const c = build("note", { to: "y", text: "hi" });
    assert.equal(a.tenantId, "acme");
    assert.equal(a.action.type, "note");
    assert.match(a.itemId, /^note:[0-9a-f]{16}$/);
    assert.equal(a.itemId, b.itemId);
    assert.notEqual(a.itemId, c.itemId);
  });

  it("refuses an amount that is not a number", () => {
    assert.throws(() => build("refund", { amount: "lots" }), {
      name: "ArgumentError",
      message: 'argument amount must be a number (the amount), got "lots"',
    });
  });

  it("sorts keys at every level in canonical JSON", () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}');
  });
});

describe("ToolGate without MCP", () => {
  let agate;
  let client;
  before(async () => {
    agate = await startAgateServer();
    client = new Client(agate.target, { deadlineMs: 5000 });
  });
  after(async () => {
    client.close();
    await agate.stop();
  });

  it("applies the unmapped policy and evaluate: false without asking agate", async () => {
    const deny = new ToolGate(client, parseMapping("tenant: acme\nunmapped: deny\ntools:\n  read: {evaluate: false}\n"));
    assert.equal((await deny.check("read", {})).forward, true);
    const refused = await deny.check("write", {});
    assert.equal(refused.forward, false);
    assert.equal(refused.result.content[0].text, "agate: write was not executed: this gate lets no unlisted tool through.");
    const allow = new ToolGate(client, parseMapping("tenant: acme\nunmapped: allow\n"));
    assert.equal((await allow.check("anything", {})).forward, true);
    assert.deepEqual(client.counters().ok, 0, "agate was not asked");
  });

  it("evaluates an unlisted tool by its name when unmapped is evaluate", async () => {
    const gate = new ToolGate(client, parseMapping("tenant: acme\n"));
    const allowed = await gate.check("lookup", { id: 1 });
    assert.equal(allowed.forward, true);
    assert.equal(allowed.decision.verdict, "ALLOW");
    const blocked = await gate.check("refund", {}); // no amount: no trigger fires
    assert.equal(blocked.forward, true);
  });

  it("refuses arguments the mapping cannot use, without asking agate", async () => {
    const gate = new ToolGate(client, loadMapping(MAPPING));
    const before = client.counters().ok;
    const r = await gate.check("refund", { order_id: "o", amount: "a lot" });
    assert.equal(r.forward, false);
    assert.equal(r.result.isError, true);
    assert.equal(r.result.content[0].text, 'agate: refund was not executed: argument amount must be a number (the amount), got "a lot".');
    assert.equal(client.counters().ok, before);
  });

  it("refuses what agate refuses as malformed, naming the field", async () => {
    const gate = new ToolGate(client, loadMapping(MAPPING));
    const r = await gate.check("refund", { order_id: "o", amount: -5 });
    assert.equal(r.forward, false);
    assert.match(r.result.content[0].text, /^agate: refund was not executed: agate refused the check: .*INVALID_ARGUMENT: action\.amount/);
  });

  it("forgets the oldest awaited case past maxRemembered", async () => {
    const gate = new ToolGate(client, loadMapping(MAPPING), { maxRemembered: 2 });
    for (const id of ["m-1", "m-2", "m-3"]) await gate.check("refund", { order_id: id, amount: 300 });
    assert.equal(gate.awaitedCases, 2);
  });
});
