"""Character-level tokenizer for the embedded default model, built with the `tokenizers` library.

Every printable ASCII character is one token; the special tokens (mask, EOS/pad, chat roles) and the
output-format tags (`<reasoning>`, `</reasoning>`, `<answer>`, `</answer>`) are single tokens too, so a
4x4 Sudoku example stays a few dozen tokens long. Saved with `save_pretrained`, it loads back with
`AutoTokenizer.from_pretrained` and nothing else.
"""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

MASK_TOKEN = "<|mask|>"
EOS_TOKEN = "<|eos|>"  # also the pad token: the model learns to fill the unused tail with EOS
UNK_TOKEN = "<|unk|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
FORMAT_TAGS = ("<reasoning>", "</reasoning>", "<answer>", "</answer>")

# Roles open a turn; the assistant turn ends with EOS, so generation stops at the first EOS.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def build_embedded_tokenizer() -> PreTrainedTokenizerFast:
    """Return the embedded character-level tokenizer (about 110 tokens)."""
    specials = [EOS_TOKEN, MASK_TOKEN, UNK_TOKEN, *ROLE_TOKENS]
    chars = [c for c in string.printable if c not in "\x0b\x0c\r"]
    vocab = {tok: i for i, tok in enumerate([*specials, *FORMAT_TAGS, *chars])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    # One piece per character; added tokens (tags, specials) are matched before this split.
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        mask_token=MASK_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=list(ROLE_TOKENS),
        chat_template=CHAT_TEMPLATE,
        padding_side="right",
    )
    # The format tags are ordinary (non-special) added tokens: one id each, kept by decode().
    tokenizer.add_tokens(list(FORMAT_TAGS))
    return tokenizer
