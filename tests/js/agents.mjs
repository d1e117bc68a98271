// OpenAI Agents JS (`@openai/agents`) against the bridge, through the Responses API.
// One scenario per run; the result is JSON on stdout.
import { apiKey, baseURL, load, main, model } from "./common.mjs";

const agents = load("@openai/agents");
const { OpenAI } = load("openai");
const { z } = load("zod");
const { Agent, run, tool, user } = agents;

agents.setDefaultOpenAIClient(new OpenAI({ baseURL, apiKey, maxRetries: 0 }));
agents.setOpenAIAPI("responses");
agents.setTracingDisabled(true);

const getWeather = tool({
  name: "get_weather",
  description: "The weather in a city.",
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => `${city}: 21 C, sunny`,
});

function agent(tools = [], modelSettings = {}) {
  return new Agent({ name: "assistant", instructions: "Be brief.", model, tools, modelSettings });
}

/** A streamed run, drained: its text, the event kinds seen, and the run result. */
async function streamed(who, input, options = {}) {
  const result = await run(who, input, { stream: true, ...options });
  const kinds = [];
  let text = "";
  for await (const event of result) {
    const kind = event.type === "raw_model_stream_event" ? event.data.type : event.type;
    if (kinds.at(-1) !== kind) kinds.push(kind);
    if (event.type === "raw_model_stream_event" && event.data.type === "output_text_delta") {
      text += event.data.delta;
    }
  }
  await result.completed;
  if (result.error) throw result.error;
  return { result, kinds, text };
}

function items(result) {
  return result.newItems.map((item) => item.type);
}

await main({
  async stream() {
    const { result, kinds, text } = await streamed(agent(), "Say hello.");
    return { kinds, text, final: result.finalOutput };
  },

  async tool_loop() {
    const { result, text } = await streamed(agent([getWeather]), "What is the weather in Paris?");
    return { text, final: result.finalOutput, items: items(result) };
  },

  async history() {
    const who = agent([getWeather]);
    const first = await run(who, "What is the weather in Paris?");
    const second = await run(who, [...first.history, user("And tomorrow?")]);
    return { finals: [first.finalOutput, second.finalOutput], items: items(second) };
  },

  async previous_response_id() {
    const who = agent([getWeather]);
    const first = await run(who, "What is the weather in Paris?");
    const second = await run(who, "And tomorrow?", { previousResponseId: first.lastResponseId });
    return { finals: [first.finalOutput, second.finalOutput], items: items(second) };
  },

  // Stateless: nothing stored, reasoning travels in encrypted_content.
  async history_stateless() {
    const who = agent([getWeather], {
      store: false,
      providerData: { include: ["reasoning.encrypted_content"] },
    });
    const first = await run(who, "What is the weather in Paris?");
    const second = await run(who, [...first.history, user("And tomorrow?")]);
    return { finals: [first.finalOutput, second.finalOutput], items: items(second) };
  },
});
