// openai-node (`openai` on npm) against the bridge: one scenario per run, result as JSON on stdout.
import { apiKey, baseURL, load, main, model } from "./common.mjs";

const { OpenAI } = load("openai");
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

const WEATHER = {
  type: "function",
  name: "get_weather",
  description: "The weather in a city.",
  parameters: {
    type: "object",
    properties: { city: { type: "string" } },
    required: ["city"],
    additionalProperties: false,
  },
  strict: true,
};

/** A streamed turn: the event types in order, the streamed text, the final response. */
async function streamed(params) {
  const stream = await client.responses.create({ model, stream: true, ...params });
  const types = [];
  let text = "";
  let reasoning = "";
  let response = null;
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === "response.output_text.delta") text += event.delta;
    if (event.type === "response.reasoning_text.delta") reasoning += event.delta;
    if (event.type === "response.completed") response = event.response;
    if (event.type === "response.failed") throw new Error(JSON.stringify(event.response.error));
  }
  return { types, text, reasoning, response };
}

function weather(call) {
  const { city } = JSON.parse(call.arguments);
  return { type: "function_call_output", call_id: call.call_id, output: `${city}: 21 C, sunny` };
}

/** Call the tool the model asks for and answer it, with the history sent back as items. */
async function toolLoop(extra) {
  const input = [{ role: "user", content: "What is the weather in Paris?" }];
  const first = await streamed({ input, tools: [WEATHER], ...extra });
  const calls = first.response.output.filter((item) => item.type === "function_call");
  const history = [...input, ...first.response.output, ...calls.map(weather)];
  const second = await streamed({ input: history, tools: [WEATHER], ...extra });
  return {
    calls: calls.map((c) => ({ name: c.name, arguments: JSON.parse(c.arguments) })),
    first_output: first.response.output,
    text: second.text,
    reasoning: [first.reasoning, second.reasoning],
  };
}

await main({
  async stream() {
    const turn = await streamed({ input: "Say hello." });
    return { types: turn.types, text: turn.text, output: turn.response.output };
  },

  tool_loop: () => toolLoop({}),

  async previous_response_id() {
    const first = await streamed({ input: "My name is Ada." });
    const second = await streamed({
      input: "What is my name?",
      previous_response_id: first.response.id,
    });
    return { texts: [first.text, second.text] };
  },

  async previous_response_id_tool_loop() {
    const first = await streamed({ input: "What is the weather in Paris?", tools: [WEATHER] });
    const calls = first.response.output.filter((item) => item.type === "function_call");
    const second = await streamed({
      input: calls.map(weather),
      previous_response_id: first.response.id,
      tools: [WEATHER],
    });
    return { text: second.text, reasoning: [first.reasoning, second.reasoning] };
  },

  // Stateless, as Codex runs: nothing stored, reasoning carried in encrypted_content.
  stateless_tool_loop: () =>
    toolLoop({ store: false, include: ["reasoning.encrypted_content"] }),
});
