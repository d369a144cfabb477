// The mapping file: how a tools/call becomes an agate EvaluateRequest. YAML (so JSON too).
//
//   tenant: acme                  # fixed tenant (a tool's tenant_arg or tenant overrides it)
//   agent_id: support-agent       # EvaluateRequest.agent_id (default "mcp-gate")
//   workflow: support             # EvaluateRequest.workflow_id (a tool's workflow overrides it)
//   unmapped: evaluate            # tools not listed: evaluate (action.type = the tool's name),
//                                 # allow (forward unasked) or deny (refuse unasked)
//   tools:
//     refund:
//       action: refund            # action.type (default: the tool's name)
//       amount_arg: amount        # argument holding action.amount (a number, or a numeric string)
//       currency_arg: currency    # or currency: USD
//       target_arg: customer_id   # action.target
//       item_arg: order_id        # item_id (default: derived from the tool and its arguments)
//       tenant_arg: tenant        # tenant_id from an argument (falls back to tenant)
//       target_tenant_arg: account_tenant   # action.target_tenant_id
//       irreversible: true        # action.irreversible / customer_facing / critical (default false)
//       requested_scopes: [billing:write]
//       attributes: [reason]      # arguments copied into attributes (a map renames: {attr: arg})
//     lookup_order:
//       evaluate: false           # read-only: forwarded without asking agate
//
// Argument names may be dotted paths into nested objects ("order.id"). Every error names the
// file, line and column.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { LineCounter, type Document, isMap, isScalar, parseDocument } from "yaml";

/** What happens to a tools/call of a tool the mapping does not list. */
export type UnmappedPolicy = "evaluate" | "allow" | "deny";

/** How one tool's calls become EvaluateRequests. */
export interface ToolRule {
  /** False: the tool is forwarded without asking agate (read-only tools). */
  readonly evaluate: boolean;
  /** action.type. */
  readonly action: string;
  readonly amountArg?: string;
  readonly currencyArg?: string;
  readonly currency?: string;
  readonly targetArg?: string;
  readonly itemArg?: string;
  readonly tenantArg?: string;
  readonly tenant?: string;
  readonly targetTenantArg?: string;
  readonly workflow?: string;
  readonly irreversible: boolean;
  readonly customerFacing: boolean;
  readonly critical: boolean;
  readonly requestedScopes: readonly string[];
  /** attribute name -> argument path. */
  readonly attributes: Readonly<Record<string, string>>;
}

/** A loaded, validated mapping file. Immutable. */
export interface Mapping {
  /** Where it came from (a path, or "<inline>"). */
  readonly source: string;
  readonly tenant?: string;
  readonly agentId: string;
  readonly workflow: string;
  readonly unmapped: UnmappedPolicy;
  readonly tools: ReadonlyMap<string, ToolRule>;
}

/** MappingError is a mapping file that cannot be used; its message starts with `file:line:col:`. */
export class MappingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MappingError";
  }
}

/** loadMapping reads and validates a mapping file; throws MappingError. */
export function loadMapping(path: string): Mapping {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new MappingError(`${path}: cannot read the mapping file: ${(e as Error).message}`);
  }
  return parseMapping(text, path);
}

const TOP_KEYS = new Set(["tenant", "agent_id", "workflow", "unmapped", "tools"]);
const TOOL_KEYS = new Set([
  "evaluate",
  "action",
  "amount_arg",
  "currency_arg",
  "currency",
  "target_arg",
  "item_arg",
  "tenant_arg",
  "tenant",
  "target_tenant_arg",
  "workflow",
  "irreversible",
  "customer_facing",
  "critical",
  "requested_scopes",
  "attributes",
]);

/** parseMapping validates a mapping given as YAML or JSON text; throws MappingError. */
export function parseMapping(text: string, source = "<inline>"): Mapping {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw new MappingError(`${source}:${pos?.line ?? 1}:${pos?.col ?? 1}: ${e.message.split("\n")[0]}`);
  }
  const v = new Validator(doc, lines, source);
  const root = v.object([], doc.toJS() ?? {});
  v.onlyKeys([], root, TOP_KEYS);
  const tenant = v.optionalString(["tenant"], root.tenant);
  const agentId = v.optionalString(["agent_id"], root.agent_id) ?? "mcp-gate";
  const workflow = v.optionalString(["workflow"], root.workflow) ?? "";
  const unmapped = (v.optionalString(["unmapped"], root.unmapped) ?? "evaluate") as UnmappedPolicy;
  if (!["evaluate", "allow", "deny"].includes(unmapped)) {
    v.fail(["unmapped"], `must be evaluate, allow or deny, got ${JSON.stringify(unmapped)}`);
  }
  const tools = new Map<string, ToolRule>();
  const toolsObject = root.tools === undefined ? {} : v.object(["tools"], root.tools);
  for (const [name, raw] of Object.entries(toolsObject)) {
    const at = ["tools", name];
    const t = v.object(at, raw ?? {});
    v.onlyKeys(at, t, TOOL_KEYS);
    const rule: ToolRule = {
      evaluate: v.optionalBool([...at, "evaluate"], t.evaluate) ?? true,
      action: v.optionalString([...at, "action"], t.action) ?? name,
      amountArg: v.optionalString([...at, "amount_arg"], t.amount_arg),
      currencyArg: v.optionalString([...at, "currency_arg"], t.currency_arg),
      currency: v.optionalString([...at, "currency"], t.currency),
      targetArg: v.optionalString([...at, "target_arg"], t.target_arg),
      itemArg: v.optionalString([...at, "item_arg"], t.item_arg),
      tenantArg: v.optionalString([...at, "tenant_arg"], t.tenant_arg),
      tenant: v.optionalString([...at, "tenant"], t.tenant),
      targetTenantArg: v.optionalString([...at, "target_tenant_arg"], t.target_tenant_arg),
      workflow: v.optionalString([...at, "workflow"], t.workflow),
      irreversible: v.optionalBool([...at, "irreversible"], t.irreversible) ?? false,
      customerFacing: v.optionalBool([...at, "customer_facing"], t.customer_facing) ?? false,
      critical: v.optionalBool([...at, "critical"], t.critical) ?? false,
      requestedScopes: v.stringList([...at, "requested_scopes"], t.requested_scopes),
      attributes: v.attributes([...at, "attributes"], t.attributes),
    };
    if (rule.evaluate && rule.tenant === undefined && rule.tenantArg === undefined && tenant === undefined) {
      v.fail(at, "no tenant: set tenant or tenant_arg here, or tenant at the top", true);
    }
    tools.set(name, rule);
  }
  if (unmapped === "evaluate" && tenant === undefined) {
    v.fail(["unmapped"], "evaluate needs a top-level tenant for the tools the mapping does not list");
  }
  return { source, tenant, agentId, workflow, unmapped, tools };
}

/** ruleFor returns how to gate a tool: its rule, or the unmapped policy's. */
export function ruleFor(mapping: Mapping, tool: string): ToolRule | "allow" | "deny" {
  const rule = mapping.tools.get(tool);
  if (rule) return rule;
  if (mapping.unmapped !== "evaluate") return mapping.unmapped;
  return {
    evaluate: true,
    action: tool,
    irreversible: false,
    customerFacing: false,
    critical: false,
    requestedScopes: [],
    attributes: {},
  };
}

/** ArgumentError is a tools/call whose arguments cannot be turned into a request. */
export class ArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ArgumentError";
  }
}

/**
 * canonicalJson is the JSON of a value with object keys sorted at every level: equal arguments
 * give equal strings, whatever order the model wrote them in.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

const EVIDENCE_BYTES = 60 * 1024; // agate takes evidence entries up to 64 KiB

/**
 * toEvaluateRequest builds the proto3 JSON EvaluateRequest for one tools/call (no request_id: the
 * client generates one). `canonical` is canonicalJson(args). Throws ArgumentError when an argument
 * the rule names has the wrong type or the tenant cannot be told.
 */
export function toEvaluateRequest(
  mapping: Mapping,
  tool: string,
  rule: ToolRule,
  args: Record<string, unknown>,
  canonical: string,
): Record<string, unknown> {
  const str = (path: string | undefined): string | undefined => {
    if (path === undefined) return undefined;
    const value = argAt(args, path);
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    throw new ArgumentError(`argument ${path} must be a string or a number, got ${canonicalJson(value)}`);
  };
  const tenant = str(rule.tenantArg) ?? rule.tenant ?? mapping.tenant;
  if (!tenant) throw new ArgumentError(`cannot tell the tenant: argument ${rule.tenantArg} is missing`);
  const action: Record<string, unknown> = { type: rule.action };
  if (rule.amountArg !== undefined) {
    const raw = argAt(args, rule.amountArg);
    const amount = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
    if (raw !== undefined && (typeof amount !== "number" || !Number.isFinite(amount))) {
      throw new ArgumentError(`argument ${rule.amountArg} must be a number (the amount), got ${canonicalJson(raw)}`);
    }
    if (amount !== undefined) action.amount = amount;
  }
  const currency = str(rule.currencyArg) ?? rule.currency;
  if (currency) action.currency = currency;
  const target = str(rule.targetArg);
  if (target) action.target = target;
  const targetTenant = str(rule.targetTenantArg);
  if (targetTenant) action.targetTenantId = targetTenant;
  if (rule.irreversible) action.irreversible = true;
  if (rule.customerFacing) action.customerFacing = true;
  if (rule.critical) action.critical = true;
  if (rule.requestedScopes.length > 0) action.requestedScopes = rule.requestedScopes;

  const request: Record<string, unknown> = {
    tenantId: tenant,
    agentId: mapping.agentId,
    // Without an item argument each distinct call is its own item, so its own case.
    itemId: str(rule.itemArg) ?? `${tool}:${createHash("sha256").update(canonical).digest("hex").slice(0, 16)}`,
    action,
    evidence: { proposed_action: truncate(canonicalJson({ tool, arguments: args }), EVIDENCE_BYTES) },
  };
  const workflow = rule.workflow ?? mapping.workflow;
  if (workflow) request.workflowId = workflow;
  const attributes: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(rule.attributes)) {
    const value = argAt(args, path);
    if (value !== undefined) attributes[name] = value;
  }
  if (Object.keys(attributes).length > 0) request.attributes = attributes;
  return request;
}

function argAt(args: Record<string, unknown>, path: string): unknown {
  let value: unknown = args;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function truncate(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return text;
  return `${bytes.subarray(0, maxBytes - 16).toString("utf8")}... (truncated)`;
}

// Validator checks the parsed document and reports errors at the offending node's position.
class Validator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly source: string,
  ) {}

  fail(path: (string | number)[], message: string, atKey = false): never {
    const where = path.length > 0 ? `${path.join(".")}: ` : "";
    throw new MappingError(`${this.position(path, atKey)}: ${where}${message}`);
  }

  object(path: string[], value: unknown): Record<string, unknown> {
    if (value === null || typeof value !== "object" || Array.isArray(value)) this.fail(path, "must be a map");
    return value as Record<string, unknown>;
  }

  onlyKeys(path: string[], value: Record<string, unknown>, keys: ReadonlySet<string>): void {
    for (const key of Object.keys(value)) {
      if (!keys.has(key)) this.fail([...path, key], `unknown key; known keys: ${[...keys].join(", ")}`, true);
    }
  }

  optionalString(path: string[], value: unknown): string | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value === "") this.fail(path, "must be a non-empty string");
    return value;
  }

  optionalBool(path: string[], value: unknown): boolean | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") this.fail(path, "must be true or false");
    return value;
  }

  stringList(path: string[], value: unknown): string[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) this.fail(path, "must be a list of strings");
    value.forEach((item, i) => {
      if (typeof item !== "string" || item === "") this.fail([...path, i], "must be a non-empty string");
    });
    return value as string[];
  }

  attributes(path: string[], value: unknown): Record<string, string> {
    if (value === undefined) return {};
    if (Array.isArray(value)) return Object.fromEntries(this.stringList(path, value).map((arg) => [arg, arg]));
    const map = this.object(path, value);
    for (const [name, arg] of Object.entries(map)) this.optionalString([...path, name], arg ?? "");
    return map as Record<string, string>;
  }

  private position(path: (string | number)[], atKey: boolean): string {
    let node: unknown = this.doc.getIn(path, true);
    if (atKey || node === undefined) {
      const parent = this.doc.getIn(path.slice(0, -1), true);
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[path.length - 1]);
        node = pair?.key ?? parent;
      } else if (parent !== undefined) {
        node = parent;
      }
    }
    const offset = (node as { range?: [number, number, number] } | undefined)?.range?.[0] ?? 0;
    const { line, col } = this.lines.linePos(offset);
    return `${this.source}:${line}:${col}`;
  }
}
