// ScriptedChatModel: a chat model that answers each call with the next message of a fixed script
// (tool calls included), so the agent runs offline: no network, no API key. Swap in a real model
// (ChatAnthropic, ChatOpenAI, ...) and nothing else in the graph changes.

import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { BaseMessage } from "@langchain/core/messages";
import { AIMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";

export class ScriptedChatModel extends BaseChatModel {
  private next = 0;

  /** `script` is what the model says, one message per call; past its end it says "(done)". */
  constructor(private readonly script: readonly AIMessage[]) {
    super({});
  }

  _llmType(): string {
    return "scripted";
  }

  /** bindTools is where a real model learns the tools' schemas; the script already knows them. */
  override bindTools(): this {
    return this;
  }

  async _generate(_messages: BaseMessage[]): Promise<ChatResult> {
    const message = this.script[this.next++] ?? new AIMessage("(done)");
    return { generations: [{ text: typeof message.content === "string" ? message.content : "", message }] };
  }
}
