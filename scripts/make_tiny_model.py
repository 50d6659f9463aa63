"""Regenerate dyncc/targets/local/tiny_model: a model directory the Dynamo frontend and mocker load
with no hub access — config.json, a small byte-level BPE tokenizer and a chat template.

The mock engine never runs weights; the frontend only needs to tokenize prompts and detokenize the
mock's output. Run once; the result is committed so builds stay byte-identical.
"""

import json
import keyword
import pathlib
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

OUT = pathlib.Path(__file__).resolve().parent.parent / "dyncc" / "targets" / "local" / "tiny_model"
VOCAB = 1024
SPECIAL = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>"]


def corpus():
    root = OUT.parent.parent.parent.parent
    for path in sorted(root.glob("**/*.md")) + sorted(root.glob("dyncc/**/*.py")):
        yield path.read_text(encoding="utf-8", errors="replace")
    yield " ".join(keyword.kwlist)
    yield "The quick brown fox jumps over the lazy dog. Hello, how are you today? " * 20


def main():
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus(), trainer)
    OUT.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(OUT / "tokenizer.json"))
    (OUT / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 32768,
        "chat_template": ("{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
                          "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"),
    }, indent=2) + "\n")
    (OUT / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": tokenizer.get_vocab_size(),
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 4, "max_position_embeddings": 32768, "eos_token_id": 0, "pad_token_id": 0,
        "torch_dtype": "bfloat16",
    }, indent=2) + "\n")
    print(f"wrote {OUT} ({tokenizer.get_vocab_size()} tokens)", file=sys.stderr)


if __name__ == "__main__":
    main()
