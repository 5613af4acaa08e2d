"""Tokenizers: an offline byte-level one for CPU-scale models, the backbone's own at real size.

    tok = build_byte_tokenizer()          # 256 byte tokens + the special tokens below; no hub, no training
    tok = load_tokenizer(path)            # any HF tokenizer directory (a checkpoint's tokenizer/, the Qwen2.5
                                          #   dir); adds QUERY_TOKEN as a special token if it is missing
    qid = query_token_id(tok)             # id of the placeholder the policies replace with learned queries
    tok.save_pretrained(dir)              # saved in every checkpoint as tokenizer/

Both are `transformers.PreTrainedTokenizerFast`, so the processor treats them alike. The special
tokens are those of the Qwen chat template (`<|im_start|>`, `<|im_end|>`, `<|endoftext|>` = pad) plus
`<|action_query|>`; special-token strings inside a prompt are parsed as one token each.

At real size the reference marks query slots with action-token ids (151386+); we add a dedicated
special token instead (id 151665 for Qwen2.5, still below the 151936 embedding rows). The id only
marks positions whose embeddings are replaced, so the two are equivalent.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
QUERY_TOKEN = "<|action_query|>"
SPECIAL_TOKENS = (PAD_TOKEN, IM_START, IM_END, QUERY_TOKEN)


def build_byte_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer: every UTF-8 byte is one token (ids 0..255), specials after (256..259)."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD_TOKEN,
        eos_token=IM_END,
        additional_special_tokens=[IM_START, QUERY_TOKEN],
        padding_side="right",
        model_max_length=4096,
    )


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """A tokenizer from a local directory (or hub id), with the query placeholder and a pad token ensured."""
    tok = AutoTokenizer.from_pretrained(str(path))
    if not isinstance(tok, PreTrainedTokenizerFast):
        raise ValueError(f"tokenizer at {path} is not a fast tokenizer (needs tokenizer.json)")
    if QUERY_TOKEN not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": [QUERY_TOKEN]})
    if tok.pad_token is None:
        tok.pad_token = PAD_TOKEN if PAD_TOKEN in tok.get_vocab() else tok.eos_token
    tok.padding_side = "right"
    return tok


def query_token_id(tok: PreTrainedTokenizerFast) -> int:
    """Id of `<|action_query|>`; raises if the tokenizer lacks it."""
    vocab = tok.get_vocab()
    if QUERY_TOKEN not in vocab:
        raise ValueError(
            f"tokenizer has no {QUERY_TOKEN!r} token; load it with vla.models.tokenizer.load_tokenizer"
        )
    return vocab[QUERY_TOKEN]
