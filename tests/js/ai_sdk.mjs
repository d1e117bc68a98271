// The Vercel AI SDK (`ai` + `@ai-sdk/openai`, its Responses model) against the bridge.
// One scenario per run; the result is JSON on stdout.
import { apiKey, baseURL, load, main, model } from "./common.mjs";

const { streamText, generateText, tool, stepCountIs } = load("ai");
const { createOpenAI } = load("@ai-sdk/openai");
const { z } = load("zod");

const openai = createOpenAI({ baseURL, apiKey });
const llm = openai.responses(model);

const tools = {
  get_weather: tool({
    description: "The weather in a city.",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => `${city}: 21 C, sunny`,
  }),
};

// A model id the SDK does not know is taken as a non-reasoning model: it then drops
// `reasoningSummary` and, with store false, keeps no reasoning. `forceReasoning` says otherwise.
const REASONING = { forceReasoning: true, reasoningSummary: "auto" };

/** streamText, drained: the part types, text, reasoning, and what to send back next turn. */
async function streamed(options) {
  const result = streamText({ model: llm, maxRetries: 0, ...options });
  const types = [];
  let reasoning = "";
  for await (const part of result.fullStream) {
    if (types.at(-1) !== part.type) types.push(part.type);
    if (part.type === "reasoning-delta") reasoning += part.text;
    if (part.type === "error") throw part.error;
  }
  return {
    types,
    text: await result.text,
    reasoning,
    steps: (await result.steps).length,
    messages: (await result.response).messages,
    responseId: (await result.providerMetadata)?.openai?.responseId,
    warnings: ((await result.warnings) ?? []).map((w) => w.message ?? w.details ?? w.type),
  };
}

/** Two turns with the whole history in `messages`, stored or not. */
async function twoTurns(openaiOptions) {
  const providerOptions = { openai: openaiOptions };
  const messages = [{ role: "user", content: "My name is Ada." }];
  const first = await streamed({ messages, providerOptions });
  messages.push(...first.messages, { role: "user", content: "What is my name?" });
  const second = await streamed({ messages, providerOptions });
  return { texts: [first.text, second.text], warnings: [...first.warnings, ...second.warnings] };
}

/** A tool loop, then a second question over the whole history (tools and reasoning in it). */
async function toolLoop(openaiOptions) {
  const providerOptions = { openai: openaiOptions };
  const messages = [{ role: "user", content: "What is the weather in Paris?" }];
  const first = await streamed({ messages, tools, stopWhen: stepCountIs(4), providerOptions });
  messages.push(...first.messages, { role: "user", content: "And tomorrow?" });
  const second = await streamed({ messages, tools, stopWhen: stepCountIs(4), providerOptions });
  return {
    types: first.types,
    steps: [first.steps, second.steps],
    texts: [first.text, second.text],
    reasoning: [first.reasoning, second.reasoning],
    warnings: [...first.warnings, ...second.warnings],
  };
}

await main({
  async stream() {
    const turn = await streamed({ prompt: "Say hello." });
    return { types: turn.types, text: turn.text, reasoning: turn.reasoning };
  },

  tool_loop: () => toolLoop({}),

  messages_store_true: () => twoTurns({}),

  messages_store_false: () => twoTurns({ store: false }),

  async previous_response_id() {
    const first = await streamed({ prompt: "My name is Ada." });
    const second = await streamed({
      prompt: "What is my name?",
      providerOptions: { openai: { previousResponseId: first.responseId } },
    });
    return { texts: [first.text, second.text] };
  },

  // Reasoning shown: the summary the request asks for is the upstream's reasoning.
  async reasoning_visible() {
    const turn = await streamed({
      prompt: "Say hello.",
      providerOptions: { openai: REASONING },
    });
    return { types: turn.types, text: turn.text, reasoning: turn.reasoning };
  },

  // No options: the SDK asks for no summary for a model id it does not know.
  async reasoning_default() {
    const turn = await streamed({ prompt: "Say hello." });
    return { types: turn.types, text: turn.text, reasoning: turn.reasoning };
  },

  async reasoning_tool_loop_previous_response_id() {
    const loop = { tools, stopWhen: stepCountIs(4) };
    const first = await streamed({
      prompt: "What is the weather in Paris?",
      ...loop,
      providerOptions: { openai: REASONING },
    });
    const second = await streamed({
      prompt: "And tomorrow?",
      ...loop,
      providerOptions: { openai: { ...REASONING, previousResponseId: first.responseId } },
    });
    return {
      texts: [first.text, second.text],
      reasoning: [first.reasoning, second.reasoning],
      warnings: [...first.warnings, ...second.warnings],
    };
  },

  // Not streamed: generateText, the bridge answering whole responses.
  async generate_tool_loop_store_false() {
    const result = await generateText({
      model: llm,
      maxRetries: 0,
      prompt: "What is the weather in Paris?",
      tools,
      stopWhen: stepCountIs(4),
      providerOptions: { openai: { ...REASONING, store: false } },
    });
    return {
      text: result.text,
      steps: result.steps.length,
      reasoning: result.steps.map((step) => step.reasoningText ?? ""),
      warnings: result.steps.flatMap((s) => s.warnings ?? []).map((w) => w.message ?? w.type),
    };
  },

  reasoning_tool_loop_store_true: () => toolLoop(REASONING),

  reasoning_tool_loop_store_false: () => toolLoop({ ...REASONING, store: false }),
});
