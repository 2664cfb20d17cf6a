"""OpenAI's own Python SDK as a client of colloquy's `/v1` routes.

    python client.py SCENARIO BASE_URL API_KEY [ARG...]

Run by `crates/server/tests/it/openai_sdk/` in the venv `venv.py` makes.
Each scenario drives the SDK the way an application would and prints one
JSON object on stdout; the Rust tests assert on it, so this file decides
nothing but what to ask. An exception a scenario does not expect is left
to end the process with its traceback (and a non-zero status).
"""

import json
import sys

import openai

MODEL = "fake-model"

# How colloquy says where an exchange went: the answer's headers.
COLLOQUY_HEADERS = ("x-colloquy-session", "x-colloquy-recorded", "x-colloquy-message")


def client(base_url: str, api_key: str, max_retries: int = 0) -> openai.OpenAI:
    # No retries unless a scenario is about them: a failure must show at once.
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=max_retries, timeout=20)


def recorded(headers) -> dict:
    return {name: headers.get(name) for name in COLLOQUY_HEADERS}


def wire(model) -> dict:
    """A chunk or completion with the fields its JSON had, and only those:
    `model_dump()` alone would fill in every field the SDK knows as None."""
    return model.model_dump(exclude_unset=True)


def status_error(error: openai.APIStatusError) -> dict:
    return {
        "class": type(error).__name__,
        "status": error.status_code,
        "body": error.body,
        "message": error.message,
        "code": error.code,
        "param": error.param,
        "type": error.type,
        "headers": recorded(error.response.headers),
    }


def ask(sdk: openai.OpenAI, messages: list, **options) -> dict:
    """One non-streamed completion: what came back and where it went."""
    raw = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=messages, **options)
    completion = raw.parse()
    return {"completion": wire(completion), "headers": recorded(raw.headers)}


def ask_streamed(sdk: openai.OpenAI, messages: list, **options) -> dict:
    """One streamed completion, read to its end as an application reads it:
    the text joined from the deltas, tool calls joined by `index`."""
    raw = sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, stream=True, **options
    )
    chunks, text, calls = [], "", {}
    for chunk in raw.parse():
        chunks.append(wire(chunk))
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                joined = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                joined["id"] = call.id or joined["id"]
                if call.function is not None:
                    joined["name"] += call.function.name or ""
                    joined["arguments"] += call.function.arguments or ""
    return {
        "chunks": chunks,
        "text": text,
        "tool_calls": [calls[index] for index in sorted(calls)],
        "headers": recorded(raw.headers),
    }


def content_of(answer: dict) -> str:
    if "text" in answer:
        return answer["text"]
    return answer["completion"]["choices"][0]["message"]["content"]


def scenario_complete(sdk, question):
    return ask(sdk, [{"role": "user", "content": question}])


def scenario_stream(sdk, question):
    return ask_streamed(
        sdk, [{"role": "user", "content": question}], stream_options={"include_usage": True}
    )


def scenario_stateless(sdk, *questions):
    """A client that keeps the conversation itself and resends all of it
    every turn, its turns streamed and not in turn."""
    messages = [{"role": "system", "content": "You are terse."}]
    turns = []
    for number, question in enumerate(questions):
        messages.append({"role": "user", "content": question})
        answer = (ask_streamed if number % 2 else ask)(sdk, messages)
        messages.append({"role": "assistant", "content": content_of(answer)})
        turns.append({"headers": answer["headers"], "reply": content_of(answer)})
    return {"turns": turns}


def scenario_diverge(sdk, first, second, instead):
    """Two turns, then the first one again followed by another question."""
    messages = [{"role": "user", "content": first}]
    one = ask(sdk, messages)
    messages.append({"role": "assistant", "content": content_of(one)})
    two = ask(sdk, messages + [{"role": "user", "content": second}])
    other = ask_streamed(sdk, messages + [{"role": "user", "content": instead}])
    return {"turns": [answer["headers"] for answer in (one, two, other)]}


def scenario_named(sdk, session, by_header, by_metadata):
    """Only the new question, the session named once by the header and once
    by `metadata` (the history is the session's own)."""
    header = ask(
        sdk,
        [{"role": "user", "content": by_header}],
        extra_headers={"X-Colloquy-Session": session},
    )
    metadata = ask_streamed(
        sdk,
        [{"role": "user", "content": by_metadata}],
        metadata={"colloquy_session": session},
    )
    return {
        "by_header": {"headers": header["headers"], "reply": content_of(header)},
        "by_metadata": {"headers": metadata["headers"], "reply": content_of(metadata)},
    }


def scenario_upstream_error(sdk, question):
    """The same failing request, streamed and not: each must raise."""
    failures = {}
    for mode, stream in (("whole", False), ("streamed", True)):
        try:
            answer = sdk.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": question}], stream=stream
            )
            if stream:
                list(answer)
            failures[mode] = {"class": None}
        except openai.APIStatusError as error:
            failures[mode] = status_error(error)
    return failures


def scenario_retried(sdk, question):
    """With the SDK's own retries on, a transient failure is not seen."""
    return ask(sdk, [{"role": "user", "content": question}])


def scenario_dropped(sdk, question):
    """A stream that fails after its first tokens: what arrived, then the
    error the SDK raised."""
    raw = sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": question}], stream=True
    )
    text, error = "", None
    try:
        for chunk in raw.parse():
            for choice in chunk.choices:
                text += choice.delta.content or ""
    except openai.APIError as raised:
        error = {"class": type(raised).__name__, "message": raised.message, "body": raised.body}
    return {"text": text, "error": error, "headers": recorded(raw.headers)}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city now.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def scenario_tools(sdk, result):
    """A question, the model's call of a client tool, the client's result,
    the answer: once non-streamed, once streamed, as two conversations."""
    rounds = {}
    for mode, send in (("whole", ask), ("streamed", ask_streamed)):
        messages = [{"role": "user", "content": f"What is the weather in Paris? ({mode})"}]
        called = send(sdk, messages, tools=[WEATHER_TOOL])
        if mode == "whole":
            choice = called["completion"]["choices"][0]
            finish_reason = choice["finish_reason"]
            calls = [
                {"id": call["id"], "name": call["function"]["name"], "arguments": call["function"]["arguments"]}
                for call in choice["message"].get("tool_calls", [])
            ]
        else:
            finish_reason = [c["choices"][0]["finish_reason"] for c in called["chunks"] if c["choices"]][-1]
            calls = called["tool_calls"]
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": call["arguments"]},
                    }
                    for call in calls
                ],
            }
        )
        messages.extend(
            {"role": "tool", "tool_call_id": call["id"], "content": result} for call in calls
        )
        answered = send(sdk, messages, tools=[WEATHER_TOOL])
        rounds[mode] = {
            "finish_reason": finish_reason,
            "calls": calls,
            "called_headers": called["headers"],
            "answer": content_of(answered),
            "answered_headers": answered["headers"],
        }
    return rounds


def scenario_errors(sdk, unknown_model):
    """Requests colloquy refuses, each as the SDK raises it, and the models
    it lists; the API key is the server's, then a wrong one."""
    question = [{"role": "user", "content": "Hello"}]
    refused = {}
    attempts = {
        "unknown_model": lambda: sdk.chat.completions.create(model=unknown_model, messages=question),
        "two_choices": lambda: sdk.chat.completions.create(model=MODEL, messages=question, n=2),
        "temperature_text": lambda: sdk.chat.completions.create(
            model=MODEL, messages=question, extra_body={"temperature": "hot"}
        ),
        "wrong_key": lambda: sdk.with_options(api_key="ck_not_a_key_of_this_server").models.list(),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            refused[name] = {"class": None}
        except openai.APIStatusError as error:
            refused[name] = status_error(error)
    models = [model.id for model in sdk.models.list()]
    model = wire(sdk.models.retrieve(MODEL))
    return {"refused": refused, "models": models, "model": model}


def scenario_compare(sdk, fake_base_url):
    """The same streamed requests, straight to the fake upstream and through
    colloquy: a text reply, then a reply calling a tool."""
    straight = client(fake_base_url, "sk-test")
    text = [{"role": "user", "content": "Tell me about foxes"}]
    tool = [{"role": "user", "content": "What is the weather in Paris?"}]
    usage = {"stream_options": {"include_usage": True}}
    compared = {}
    for name, messages, options in (
        ("text", text, usage),
        ("tool", tool, {"tools": [WEATHER_TOOL], **usage}),
    ):
        compared[name] = {
            "upstream": ask_streamed(straight, messages, **options)["chunks"],
            "colloquy": ask_streamed(sdk, messages, **options)["chunks"],
        }
    return compared


def main() -> None:
    scenario, base_url, api_key, *args = sys.argv[1:]
    max_retries = 2 if scenario == "retried" else 0
    run = globals()[f"scenario_{scenario}"]
    print(json.dumps(run(client(base_url, api_key, max_retries), *args)))


if __name__ == "__main__":
    main()
