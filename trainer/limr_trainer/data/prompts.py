"""The LIMR chat prompt of a question, as the rollout engines and the warm start see it."""

from __future__ import annotations

from limr_api.constants import LIMR_SYSTEM_PROMPT


def render_prompt(tokenizer, question: str, system_prompt: str | None = LIMR_SYSTEM_PROMPT) -> str:
    """The LIMR chat prompt: system turn (when set), the question as user turn, generation prompt."""
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": question}
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def truncate_prompt_ids(ids: list[int], max_len: int) -> list[int]:
    """Keep the last `max_len` prompt tokens (left truncation keeps the generation prompt)."""
    return ids[-max_len:] if len(ids) > max_len else ids


END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>")  # where LIMR cuts a response


def end_of_turn_ids(tokenizer) -> tuple[int, ...]:
    """Token ids that end a response: the chat end-of-turn and end-of-text tokens the tokenizer has,
    and its EOS. Generation stops after the first; a response with none of them is truncated."""
    ids = []
    vocab = tokenizer.get_vocab()
    for token in END_OF_TURN_TOKENS:
        if token in vocab:
            ids.append(vocab[token])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return tuple(dict.fromkeys(ids))
