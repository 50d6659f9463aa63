"""Regenerate dyncc/engines/mocker/tiny_model: a model directory the Dynamo frontend and mocker load
with no hub access — config.json, a small byte-level BPE tokenizer and a chat template.

The mock engine never runs weights; the frontend only needs to tokenize prompts and detokenize the
mock's output. Run once; the result is committed so builds stay byte-identical.
"""

import json
import keyword
import pathlib
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

OUT = pathlib.Path(__file__).resolve().parent.parent / "dyncc" / "engines" / "mocker" / "tiny_model"
VOCAB = 1024
# The mock engine emits token ids across a Llama-sized range; ids past the trained vocabulary decode to
# nothing and clients then see responses without text. Decode-only entries fill the range: plain ASCII
# words no merge can produce, so prompts tokenize exactly as before.
FULL_VOCAB = 32000
SPECIAL = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>"]


def corpus():
    # ASCII only: the mock engine samples token ids, and a token that is a lone non-ASCII byte decodes to
    # nothing on its own — clients (aiperf) then see responses without content.
    root = OUT.parent.parent.parent.parent
    for path in sorted(root.glob("*.md")) + sorted(root.glob("dyncc/**/*.py")):
        yield path.read_text(encoding="utf-8", errors="replace").encode("ascii", "ignore").decode()
    yield " ".join(keyword.kwlist)
    yield "The quick brown fox jumps over the lazy dog. Hello, how are you today? " * 20


def main():
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    ascii_alphabet = [c for c in pre_tokenizers.ByteLevel.alphabet() if c.isascii() and c.isprintable()]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB - len(SPECIAL), initial_alphabet=ascii_alphabet, show_progress=False)
    tokenizer.train_from_iterator(corpus(), trainer)
    # Special tokens last: the mock engine emits low token ids, which must decode to visible text.
    tokenizer.add_special_tokens(SPECIAL)
    OUT.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(OUT / "tokenizer.json"))
    data = json.loads((OUT / "tokenizer.json").read_text())
    vocab = data["model"]["vocab"]
    used = set(vocab.values()) | {t["id"] for t in data["added_tokens"]}
    filler = (i for i in range(FULL_VOCAB) if i not in used)
    for n, token_id in enumerate(filler):
        vocab[f"\u0120mock{n}"] = token_id  # "\u0120" is the byte-level spelling of a leading space
    (OUT / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    (OUT / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": None,
                "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "model_max_length": 32768,
                "chat_template": (
                    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
                    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
                ),
            },
            indent=2,
        )
        + "\n"
    )
    (OUT / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "vocab_size": FULL_VOCAB,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 4,
                "max_position_embeddings": 32768,
                "bos_token_id": tokenizer.token_to_id("<|endoftext|>"),
                "eos_token_id": tokenizer.token_to_id("<|endoftext|>"),
                "pad_token_id": tokenizer.token_to_id("<|endoftext|>"),
                "torch_dtype": "bfloat16",
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {OUT} ({tokenizer.get_vocab_size()} tokens)", file=sys.stderr)


if __name__ == "__main__":
    main()
