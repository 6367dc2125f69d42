"""The official OpenAI Python client against a Kairos worker or gateway.

Usage: openai_client.py BASE_URL API_KEY CHAT_MODEL EMBED_MODEL

Chat with and without streaming (the same greedy text, usage in the stream), text completions
with logprobs, embeddings (the client's default base64 encoding and explicit floats agree),
the model list, and a wrong key refused with AuthenticationError. Prints "all checks passed".
"""

import math
import sys

import openai

base, key, chat_model, embed_model = sys.argv[1:5]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=120)

messages = [{"role": "user", "content": "Name a large city in France."}]
whole = client.chat.completions.create(
    model=chat_model, messages=messages, max_tokens=12, temperature=0
)
assert whole.model == chat_model, whole.model
text = whole.choices[0].message.content
assert text, whole
assert whole.choices[0].finish_reason in ("stop", "length"), whole
assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens

pieces, usage = [], None
stream = client.chat.completions.create(
    model=chat_model,
    messages=messages,
    max_tokens=12,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for c in chunk.choices:
        if c.delta.content:
            pieces.append(c.delta.content)
assert "".join(pieces) == text, ("".join(pieces), text)
assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens, usage

lp = client.chat.completions.create(
    model=chat_model, messages=messages, max_tokens=4, temperature=0, logprobs=True, top_logprobs=2
)
content = lp.choices[0].logprobs.content
assert len(content) == lp.usage.completion_tokens, content
for t in content:
    assert t.logprob <= 0 and len(t.top_logprobs) == 2, t

comp = client.completions.create(
    model=chat_model, prompt="The capital of France is", max_tokens=5, temperature=0, logprobs=2
)
logprobs = comp.choices[0].logprobs
assert len(logprobs.tokens) == len(logprobs.token_logprobs) == len(logprobs.top_logprobs) == 5
assert "".join(logprobs.tokens) == comp.choices[0].text, (logprobs.tokens, comp.choices[0].text)
assert all(v <= 0 for v in logprobs.token_logprobs)

# The client asks for base64 by default and decodes it; floats asked for explicitly agree.
texts = ["Bitcoin rallies after the ETF approval", "The central bank raises rates"]
b64 = client.embeddings.create(model=embed_model, input=texts)
flt = client.embeddings.create(model=embed_model, input=texts, encoding_format="float")
assert len(b64.data) == 2 and b64.model == embed_model
for a, b in zip(b64.data, flt.data):
    assert len(a.embedding) == len(b.embedding) == 384
    assert max(abs(x - y) for x, y in zip(a.embedding, b.embedding)) < 1e-6
    assert abs(math.sqrt(sum(x * x for x in a.embedding)) - 1) < 1e-4
assert b64.usage.prompt_tokens > 0

ids = [m.id for m in client.models.list()]
assert chat_model in ids and embed_model in ids, ids

bad = openai.OpenAI(base_url=base, api_key="wrong-key-0123456789", max_retries=0)
try:
    bad.models.list()
    raise SystemExit("a wrong key was accepted")
except openai.AuthenticationError as e:
    assert e.status_code == 401

try:
    client.chat.completions.create(model="no-such-model", messages=messages, max_tokens=2)
    raise SystemExit("an unknown model was accepted")
except openai.NotFoundError as e:
    assert e.status_code == 404

print("all checks passed")
